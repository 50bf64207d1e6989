import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { declaredHosts, fetchFiles, fileUrl } from "./fetch.ts";
import { DataError } from "./normalize.ts";
import type { FetchFile } from "./types.ts";
import { withTempDir } from "../util/testing.ts";

const BODY = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31 + (i >> 8)) & 0xff);
const SHA = createHash("sha256").update(BODY).digest("hex");

type Mode = "ok" | "cut" | "break" | "wrong" | "error" | "norange";

/** A server on 127.0.0.1 serving BODY at /f.bin in the current `mode`; Range requests honoured in "ok". */
function server() {
  const state = { mode: "ok" as Mode, requests: [] as string[] };
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const range = req.headers.get("range");
    state.requests.push(`${state.mode} ${range ?? "-"}`);
    const m = state.mode;
    if (m === "error") return new Response("boom", { status: 500 });
    if (m === "wrong") return new Response(BODY.map((b) => b ^ 1));
    if (m === "cut") return new Response(BODY.subarray(0, 100_000)); // a clean but short response
    if (m === "break") {
      // sends 120 kB, then the connection breaks
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(BODY.subarray(0, 120_000));
            setTimeout(() => c.error(new Error("connection reset")), 20);
          },
        }),
        { headers: { "content-length": String(BODY.length) } },
      );
    }
    const from = range && m === "ok" ? Number(/bytes=(\d+)-/.exec(range)![1]) : 0;
    return from > 0
      ? new Response(BODY.subarray(from), {
        status: 206,
        headers: { "content-range": `bytes ${from}-${BODY.length - 1}/${BODY.length}` },
      })
      : new Response(BODY);
  });
  const url = `http://127.0.0.1:${s.addr.port}/f.bin`;
  return { state, url, close: () => s.shutdown() };
}

/** What {@link withServer} hands a test: the server, the pinned file it serves, an empty download folder. */
interface Served {
  srv: ReturnType<typeof server>;
  f: FetchFile;
  dir: string;
}

/** Runs `fn` with a fresh {@link server} and download folder; shuts the server down and removes the folder after. */
async function withServer(fn: (s: Served) => Promise<void>): Promise<void> {
  const srv = server();
  try {
    await withTempDir(
      "fetch",
      (dir) => fn({ srv, f: { url: srv.url, name: "f.bin", sha256: SHA, bytes: BODY.length }, dir }),
    );
  } finally {
    await srv.close();
  }
}

const files = async (dir: string) => {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
};

Deno.test("fetch: downloads, verifies the pin, then serves from the cache", async () => {
  await withServer(async ({ srv, f, dir }) => {
    const seen: number[] = [];
    const [r] = await fetchFiles([f], { dir, progress: (_p, d) => seen.push(d) });
    assert.equal(r.status, "downloaded");
    assert.deepEqual(await Deno.readFile(join(dir, "f.bin")), BODY);
    assert.equal(seen.at(-1), BODY.length);
    assert.equal((await fetchFiles([f], { dir }))[0].status, "cached");
    assert.equal(srv.state.requests.length, 1);
    assert.deepEqual(await files(dir), ["f.bin"]);
  });
});

Deno.test("fetch: an interrupted transfer keeps its .part and resumes with a Range request", async () => {
  await withServer(async ({ srv, f, dir }) => {
    srv.state.mode = "break";
    await assert.rejects(
      fetchFiles([f], { dir }),
      (e: unknown) => e instanceof DataError && /broke off after 120000 of 300000 bytes .* resume/.test(e.message),
    );
    assert.deepEqual(await files(dir), ["f.bin.part"], "nothing usable: only the .part");
    srv.state.mode = "ok";
    const [r] = await fetchFiles([f], { dir });
    assert.equal(r.status, "resumed");
    assert.equal(srv.state.requests.at(-1), "ok bytes=120000-");
    assert.deepEqual(await Deno.readFile(join(dir, "f.bin")), BODY);
    assert.deepEqual(await files(dir), ["f.bin"]);
  });
});

Deno.test("fetch: truncated response, wrong bytes and server errors are refused, nothing usable left", async () => {
  await withServer(async ({ srv, f, dir }) => {
    srv.state.mode = "cut";
    await assert.rejects(fetchFiles([f], { dir }), /ended after 100000 of 300000 bytes \(truncated\)/);
    assert.deepEqual(await files(dir), ["f.bin.part"]);
    srv.state.mode = "wrong"; // ignores the Range: starts over, and the bytes do not match the pin
    await assert.rejects(
      fetchFiles([f], { dir }),
      (e: unknown) =>
        e instanceof DataError && new RegExp(`does not match its pin: .*declares 300000 bytes with sha256 ${SHA}`)
          .test(e.message),
    );
    assert.deepEqual(await files(dir), [], "a mismatching download is deleted");
    srv.state.mode = "error";
    await assert.rejects(fetchFiles([f], { dir }), new RegExp(`cannot download ${srv.url}: HTTP 500`));
    assert.deepEqual(await files(dir), []);
    // an unpinned file: downloaded, its pin printed, nothing kept
    srv.state.mode = "ok";
    await assert.rejects(
      fetchFiles([{ url: srv.url, name: "f.bin", sha256: null, bytes: null }], { dir }),
      new RegExp(`f.bin is not pinned, so nothing was kept.* 300000 bytes with sha256 ${SHA}`),
    );
    assert.deepEqual(await files(dir), []);
    // a file already in place with other bytes is not trusted: it is fetched again
    await Deno.writeFile(join(dir, "f.bin"), BODY.subarray(0, 10));
    srv.state.mode = "ok";
    assert.equal((await fetchFiles([f], { dir }))[0].status, "downloaded");
  });
});

Deno.test("fetch: offline (nothing listening) names the URL; only https (or local http) URLs", async () => {
  await withTempDir("fetch", async (dir) => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close(); // now nothing listens there
    const url = `http://127.0.0.1:${port}/data.parquet`;
    await assert.rejects(
      fetchFiles([{ url, name: "data.parquet", sha256: SHA, bytes: 1 }], { dir }),
      (e: unknown) =>
        e instanceof DataError && e.message.startsWith(`cannot download ${url}:`) && /offline/.test(e.message),
    );
    assert.deepEqual(await files(dir), []);
    await assert.rejects(
      fetchFiles([{ url: "http://example.com/x.txt", name: "x.txt", sha256: SHA, bytes: 1 }], { dir }),
      /only https:\/\/ URLs can be fetched/,
    );
  });
  const hf: FetchFile = {
    hf: { repo: "org/ds", revision: "abc123", path: "data/train.parquet" },
    sha256: SHA,
    bytes: 1,
  };
  assert.equal(fileUrl(hf), "https://huggingface.co/datasets/org/ds/resolve/abc123/data/train.parquet");
  assert.deepEqual(declaredHosts([hf, { url: "https://a.org:8443/x", name: "x", sha256: SHA, bytes: 1 }]), [
    "a.org:8443",
    "huggingface.co",
  ]);
});
