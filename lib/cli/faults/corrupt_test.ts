/**
 * Corruption: truncated, bit-flipped or deleted cache files, checkpoints and databases are detected
 * by their checksums; the run is retrained (resuming from what still verifies) or the database is
 * rebuilt from the cache, never loaded; the final results equal the uncorrupted ones bit for bit.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  cli,
  copyResults,
  entries,
  FULL,
  killed,
  ok,
  runsJson,
  type Snapshot,
  snapshot,
  SUITE,
  tempResults,
} from "./helpers.ts";
import { withDir } from "../../util/testing.ts";

const EXP = ["exp", "faults", "--plain"];

let basePromise: Promise<{ dir: string; snap: Snapshot }> | null = null;

/** A finished results folder (copied, never modified) and its snapshot. */
function base(): Promise<{ dir: string; snap: Snapshot }> {
  basePromise ??= (async () => {
    const dir = await tempResults("corrupt-base");
    ok(await cli(dir, EXP), "base run");
    return { dir, snap: await snapshot(dir) };
  })();
  return basePromise;
}

/**
 * Runs `fn` on a copy (`finelab-<prefix>-…`) of the base results, then asserts the copy's results are the
 * base's, bit for bit; the copy is removed however the test ends.
 */
async function onCopy(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const { dir: src, snap } = await base();
  await withDir(copyResults(src, prefix), async (dir) => {
    await fn(dir);
    assert.deepEqual(await snapshot(dir), snap);
  });
}

/** Changes the `nth` decimal digit at or after `from` (a valid file stays valid, with a wrong number). */
async function flipDigit(path: string, nth = 0, from = 0): Promise<void> {
  const b = await Deno.readFile(path);
  let seen = 0;
  for (let i = from; i < b.length; i++) {
    if (b[i] >= 0x30 && b[i] <= 0x39 && seen++ === nth) {
      b[i] = 0x30 + ((b[i] - 0x30 + 1) % 10);
      return await Deno.writeFile(path, b);
    }
  }
  throw new Error(`no digit ${nth} in ${path}`);
}

/** Flips one bit in the middle of a file. */
async function flipBit(path: string, at = 0.5): Promise<void> {
  const b = await Deno.readFile(path);
  b[Math.floor(b.length * at)] ^= 0x10;
  await Deno.writeFile(path, b);
}

/** Cuts a file to a fraction of its size. */
async function truncate(path: string, keep = 0.5): Promise<void> {
  const b = await Deno.readFile(path);
  await Deno.writeFile(path, b.subarray(0, Math.floor(b.length * keep)));
}

/** Offset of `key` in a text file (to flip a digit of one field). */
async function offsetOf(path: string, key: string): Promise<number> {
  const i = (await Deno.readTextFile(path)).indexOf(key);
  assert.ok(i >= 0, `${key} not in ${path}`);
  return i;
}

interface EntryCase {
  name: string;
  ci?: boolean;
  damage: (entry: string) => Promise<void>;
  /** What `runs` shows before the repair (default corrupt). */
  shown?: string;
  /** What the note of `runs` names. */
  note?: RegExp;
}

const ENTRY_CASES: EntryCase[] = [
  {
    name: "a digit of a metric value in metrics.jsonl changed",
    ci: true,
    damage: async (e) => await flipDigit(`${e}/metrics.jsonl`, 3, await offsetOf(`${e}/metrics.jsonl`, '"value"')),
    note: /metrics\.jsonl has sha256/,
  },
  { name: "metrics.jsonl truncated", damage: (e) => truncate(`${e}/metrics.jsonl`), note: /metrics\.jsonl/ },
  {
    name: "metrics.jsonl deleted",
    damage: (e) => Deno.remove(`${e}/metrics.jsonl`),
    note: /metrics\.jsonl is missing/,
  },
  {
    name: "val_loss in summary.json changed by one digit",
    damage: async (e) => await flipDigit(`${e}/summary.json`, 4, await offsetOf(`${e}/summary.json`, '"val_loss"')),
    note: /summary\.json has sha256/,
  },
  { name: "summary.json truncated", ci: true, damage: (e) => truncate(`${e}/summary.json`), note: /summary\.json/ },
  { name: "manifest.json bit flip", damage: (e) => flipBit(`${e}/manifest.json`), note: /manifest\.json/ },
  { name: "config.yaml bit flip", damage: (e) => flipBit(`${e}/config.yaml`), note: /config\.yaml/ },
  {
    name: "a digit of status.json changed",
    ci: true,
    damage: async (e) => await flipDigit(`${e}/status.json`, 0, await offsetOf(`${e}/status.json`, '"step"')),
    note: /status\.json does not match its own sha256/,
  },
  { name: "status.json truncated", damage: (e) => truncate(`${e}/status.json`), note: /status\.json does not parse/ },
  { name: "status.json deleted", damage: (e) => Deno.remove(`${e}/status.json`), shown: "queued" },
];

for (const c of ENTRY_CASES) {
  Deno.test({
    name: `corrupt: ${c.name}: detected, not loaded; retrained from the final checkpoint, bit-identical`,
    ignore: !FULL && !c.ci,
    ...SUITE,
    async fn() {
      await onCopy("corrupt", async (dir) => {
        const [entry] = entries(dir);
        await c.damage(entry);
        // `runs` lists a finished run from the database; `runs --verify` reads and checks the entry itself.
        assert.equal((await runsJson(dir))[0].status, "completed");
        const [row] = await runsJson(dir, { verify: true });
        assert.equal(row.status, c.shown ?? "corrupt", JSON.stringify(row));
        if (c.note) assert.match(row.note!, c.note);
        const again = ok(await cli(dir, EXP), `${c.name}: rerun`);
        if (!c.shown) assert.match(again.stderr, /failed verification/);
        assert.match(again.stdout, /1 runs: 1 resumed/, again.stdout); // from the verified final/ checkpoint
        assert.equal((await runsJson(dir))[0].status, "completed");
      });
    },
  });
}

interface CheckpointCase {
  name: string;
  ci?: boolean;
  damage: (ckpt: string) => Promise<void>;
  why: RegExp;
}

const CHECKPOINT_CASES: CheckpointCase[] = [
  {
    name: "model.safetensors bit flip",
    damage: (c) => flipBit(`${c}/model.safetensors`, 0.7),
    why: /model\.safetensors has sha256/,
  },
  {
    name: "optimizer.safetensors truncated",
    damage: (c) => truncate(`${c}/optimizer.safetensors`, 0.9),
    why: /optimizer\.safetensors has sha256/,
  },
  {
    name: "a digit of a logged metric in state.json changed",
    ci: true,
    damage: async (c) => await flipDigit(`${c}/state.json`, 5, await offsetOf(`${c}/state.json`, '"value"')),
    why: /state\.json does not match its own sha256/,
  },
  { name: "state.json truncated", damage: (c) => truncate(`${c}/state.json`), why: /JSON|Unexpected|Unterminated/ },
];

for (const c of CHECKPOINT_CASES) {
  Deno.test({
    name: `corrupt: newest checkpoint's ${c.name}: skipped with a warning, resumed from the older one, bit-identical`,
    ignore: !FULL && !c.ci,
    ...SUITE,
    async fn() {
      const { snap } = await base();
      const dir = await tempResults("corrupt-ckpt");
      killed(await cli(dir, EXP, { env: { FINELAB_FAULT: "train.step:7" } }), "train.step:7");
      const [entry] = entries(dir);
      const names = [...Deno.readDirSync(`${entry}/checkpoints`)].map((e) => e.name).sort();
      assert.deepEqual(names, ["step-000004", "step-000006"]);
      await c.damage(`${entry}/checkpoints/step-000006`);
      const again = ok(await cli(dir, EXP), `${c.name}: rerun`);
      assert.match(again.stderr, /ignoring checkpoint .*step-000006: /);
      assert.match(again.stderr, c.why);
      assert.match(again.stderr, /resumed from step 4\)/);
      assert.deepEqual(await snapshot(dir), snap);
      await cleanup(dir);
    },
  });
}

Deno.test({
  name: "corrupt: summary.json and the final checkpoint both damaged: retrained from scratch, bit-identical",
  ignore: !FULL,
  ...SUITE,
  async fn() {
    await onCopy("corrupt-final", async (dir) => {
      const [entry] = entries(dir);
      await flipDigit(`${entry}/summary.json`, 2, await offsetOf(`${entry}/summary.json`, '"final_train_loss"'));
      await flipBit(`${entry}/checkpoints/final/model.safetensors`);
      const again = ok(await cli(dir, EXP));
      assert.match(again.stderr, /ignoring checkpoint .*final: model\.safetensors has sha256/);
      assert.match(again.stdout, /1 runs: 1 trained/);
    });
  },
});

interface DbCase {
  name: string;
  ci?: boolean;
  damage: (db: string) => Promise<void>;
  /** The command that finds the damage (and repairs it). */
  via: "query" | "exp" | "plot";
}

const DB_CASES: DbCase[] = [
  { name: "deleted", ci: true, damage: (db) => Deno.remove(db), via: "query" },
  {
    name: "header zeroed",
    ci: true,
    damage: async (db) => {
      const b = await Deno.readFile(db);
      b.fill(0, 0, 4096);
      await Deno.writeFile(db, b);
    },
    via: "query",
  },
  { name: "truncated to half", damage: (db) => truncate(db), via: "exp" },
  {
    name: "bit flips in every block",
    damage: async (db) => {
      const b = await Deno.readFile(db);
      for (let i = 8192 + 100; i < b.length; i += 4096) b[i] ^= 0xff;
      await Deno.writeFile(db, b);
    },
    via: "plot",
  },
  { name: "replaced by an empty file", damage: (db) => Deno.writeFile(db, new Uint8Array()), via: "exp" },
];

for (const c of DB_CASES) {
  Deno.test({
    name: `corrupt: results database ${c.name}: \`${c.via}\` rebuilds it from the cache, nothing lost`,
    ignore: !FULL && !c.ci,
    ...SUITE,
    async fn() {
      await onCopy("corrupt-db", async (dir) => {
        await c.damage(`${dir}/results.duckdb`);
        const args = c.via === "query" ? ["query", "SELECT count(*) AS n FROM runs"] : c.via === "exp" ? EXP : [
          "plot",
          "faults",
        ];
        const o = ok(await cli(dir, args), `${c.name}: ${c.via}`);
        assert.match(o.stderr, /[Rr]ebuilding it from|building it from the run cache/);
        if (c.via === "query") assert.match(o.stdout, /\b1\b/);
        if (c.via === "exp") assert.match(o.stdout, /1 runs: 1 cached/);
      });
    },
  });
}

Deno.test({
  name: "corrupt: `db rebuild` leaves a corrupt cache entry out with a warning; `exp` then retrains it",
  ...SUITE,
  async fn() {
    await onCopy("corrupt-rebuild", async (dir) => {
      const [entry] = entries(dir);
      await truncate(`${entry}/metrics.jsonl`, 0.3);
      const r = ok(await cli(dir, ["db", "rebuild"]));
      assert.match(r.stdout, /0 runs, 0 metric rows, 1 corrupt entries left out/);
      assert.match(r.stderr, /left out cache entry .*metrics\.jsonl has sha256/);
      ok(await cli(dir, EXP));
    });
  },
});

Deno.test({
  name: "corrupt: cleanup of the base results",
  ...SUITE,
  async fn() {
    if (basePromise) await cleanup((await basePromise).dir);
  },
});
