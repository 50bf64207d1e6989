/**
 * `deno task data` commands: list/show over a project with dataset modules, and fetch
 * through its child process (network permission for the declared host only) from a local
 * server started by the test.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { cmdDataFetch, cmdDataList, cmdDataShow } from "./data_cmds.ts";
import { projectPaths } from "../util/paths.ts";

async function captured(fn: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    await fn();
  } finally {
    console.log = log;
  }
  return lines.join("\n");
}

Deno.test({
  name: "data list/show describe the datasets; data fetch downloads through a host-scoped child process",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const body = new TextEncoder().encode("one document\n".repeat(1000));
    const sha = createHash("sha256").update(body).digest("hex");
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response(body));
    const root = await Deno.makeTempDir({ prefix: "finelab-datacli-" });
    try {
      await Deno.mkdir(join(root, "data"));
      const def = {
        id: "local",
        description: "a fetched test corpus",
        source: {
          kind: "fetch",
          files: [{
            url: `http://127.0.0.1:${server.addr.port}/a.txt`,
            name: "a.txt",
            sha256: sha,
            bytes: body.length,
          }],
        },
        split: { val_fraction: 0.5, seed: 0 },
        tokenizer: { kind: "bytes" },
        documents_sha256: null,
      };
      await Deno.writeTextFile(join(root, "data", "local.ts"), `export default ${JSON.stringify(def)};`);
      const paths = projectPaths(root, join(root, "results"));
      const list = await captured(() => cmdDataList({ paths }));
      assert.match(list, /^dataset\s+source\s+tokenizer\s+vocab\s+cached/m);
      assert.match(list, /^local\s+fetch\s+bytes\s+256\s+no\s+a fetched test corpus$/m);
      assert.match(list, /^gutenberg-bpe2k\s+npm gutenberg\s+bpe\s+2048/m);
      assert.match(
        await captured(() => cmdDataShow("local", { paths })),
        /file a\.txt <- http:\/\/127\.0\.0\.1:\d+\/a\.txt: not fetched/,
      );
      await captured(() => cmdDataFetch("local", { paths, plain: true }));
      const got = await Deno.readFile(join(root, "results", "data", "fetch", "local", "a.txt"));
      assert.deepEqual(got, body);
      assert.match(await captured(() => cmdDataShow("local", { paths })), /file a\.txt <- .*: 0\.0 MiB fetched/);
    } finally {
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});
