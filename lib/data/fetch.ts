/**
 * Downloads a dataset's declared files (`source: { kind: "fetch", files }`) into
 * `<cache>/data/fetch/<id>/`: plain HTTPS URLs, or Hugging Face dataset files by
 * repo/revision/path (`https://huggingface.co/datasets/<repo>/resolve/<revision>/<path>`).
 *
 * Each file downloads to `<name>.part`; an interrupted transfer resumes with an HTTP
 * Range request. A complete `.part` is checked against the declared size and pinned
 * sha256 and only then renamed to `<name>`, so nothing half-written or unverified is
 * ever read. A mismatch deletes the download and is refused. `deno task data fetch`
 * runs this in a child process whose only network permission is the declared hosts.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fetchName } from "./define.ts";
import { DataError } from "./normalize.ts";
import type { FetchFile } from "./types.ts";

/** Hugging Face Hub endpoint for `hf` files. */
export const HF_ENDPOINT = "https://huggingface.co";

/** The URL a declared file downloads from. */
export function fileUrl(f: FetchFile): string {
  if ("url" in f) return f.url;
  const { repo, revision, path } = f.hf;
  return `${HF_ENDPOINT}/datasets/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/** Hosts (host:port where given) the files of a dataset download from: its network permission. */
export function declaredHosts(files: FetchFile[]): string[] {
  return [...new Set(files.map((f) => new URL(fileUrl(f)).host))].sort();
}

/** Problems of a declared URL: HTTPS only, plain HTTP only to this machine (tests). */
export function urlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${url} is not a URL`;
  }
  const local = u.hostname === "127.0.0.1" || u.hostname === "localhost";
  if (u.protocol === "https:" || (u.protocol === "http:" && local)) return null;
  return `${url}: only https:// URLs can be fetched (http:// only from 127.0.0.1)`;
}

/** Options of {@link fetchFiles}. */
export interface FetchOptions {
  /** Folder the files go to (created). */
  dir: string;
  /** Progress of each file: bytes done and total, phase "fetch <name>". */
  progress?: (phase: string, done: number, total: number) => void;
  log?: (m: string) => void;
}

/** What happened to one file. */
export interface FetchResult {
  name: string;
  url: string;
  status: "cached" | "downloaded" | "resumed";
  bytes: number;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  for await (const chunk of f.readable) h.update(chunk); // the stream closes the file
  return h.digest("hex");
}

const size = (p: string) => Deno.stat(p).then((s) => s.size, () => -1);

async function download(f: FetchFile, url: string, final: string, opts: FetchOptions): Promise<FetchResult> {
  const name = fetchName(f), part = `${final}.part`;
  if (f.sha256 === null || f.bytes === null) return await unpinned(f, url, part);
  let have = await size(part);
  if (have > f.bytes) {
    await Deno.remove(part);
    have = -1;
  }
  const resumed = have > 0;
  let res: Response | null = null;
  if (have < f.bytes) {
    try {
      res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
    } catch (e) {
      throw new DataError(
        `cannot download ${url}: ${(e as Error).message}. Is this machine offline? ` +
          `Run \`deno task data fetch\` where ${new URL(url).host} is reachable (a partial download resumes)`,
      );
    }
    if (res.status === 200 && have > 0) have = 0; // server ignored the Range: start over
    else if (res.status === 416 && have >= 0) res = null; // nothing left to send: verify what we have
    else if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new DataError(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`.trim());
    }
  }
  if (res) {
    const out = await Deno.open(part, { write: true, create: true, truncate: have <= 0, append: have > 0 });
    let got = Math.max(have, 0);
    try {
      for await (const chunk of res.body!) {
        await out.write(chunk).then(async (n) => {
          for (let w = n; w < chunk.length;) w += await out.write(chunk.subarray(w));
        });
        got += chunk.length;
        opts.progress?.(`fetch ${name}`, got, f.bytes);
        if (got > f.bytes!) break;
      }
    } catch (e) {
      throw new DataError(
        `download of ${url} broke off after ${got} of ${f.bytes} bytes (${(e as Error).message}); ` +
          `run the fetch again to resume`,
      );
    } finally {
      out.close();
    }
  }
  const got = await size(part);
  if (got < f.bytes) {
    throw new DataError(
      `download of ${url} ended after ${got} of ${f.bytes} bytes (truncated); run the fetch again to resume`,
    );
  }
  const sha = await sha256File(part);
  if (got !== f.bytes || sha !== f.sha256) {
    await Deno.remove(part);
    throw new DataError(
      `${url} does not match its pin: ${got} bytes with sha256 ${sha}, but the dataset declares ${f.bytes} bytes ` +
        `with sha256 ${f.sha256}. Deleted the download and refusing it`,
    );
  }
  await Deno.rename(part, final);
  return { name, url, status: resumed ? "resumed" : "downloaded", bytes: got };
}

/** Downloads a file that has no pin yet, reports its sha256 and size for pinning, and keeps nothing. */
async function unpinned(f: FetchFile, url: string, part: string): Promise<never> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new DataError(`cannot download ${url}: ${(e as Error).message}. Is this machine offline?`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new DataError(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`.trim());
  }
  const h = createHash("sha256");
  let n = 0;
  for await (const chunk of res.body!) {
    h.update(chunk);
    n += chunk.length;
  }
  await Deno.remove(part).catch(() => {});
  const sha = h.digest("hex");
  throw new DataError(
    `${fetchName(f)} is not pinned, so nothing was kept. ${url} served ${n} bytes with sha256 ${sha}; ` +
      `if that is the file you mean, add \`sha256: "${sha}", bytes: ${n}\` to its entry and fetch again`,
  );
}

/** Fetches every file (skipping those already present and verified); see the module doc. */
export async function fetchFiles(files: FetchFile[], opts: FetchOptions): Promise<FetchResult[]> {
  for (const f of files) {
    const p = urlProblem(fileUrl(f));
    if (p) throw new DataError(p);
  }
  await Deno.mkdir(opts.dir, { recursive: true });
  const out: FetchResult[] = [];
  for (const f of files) {
    const url = fileUrl(f), name = fetchName(f), final = join(opts.dir, name);
    if (await size(final) === f.bytes && await sha256File(final) === f.sha256) {
      out.push({ name, url, status: "cached", bytes: f.bytes });
      continue;
    }
    await Deno.remove(final).catch(() => {}); // present but not the pinned bytes: fetch again
    const r = await download(f, url, final, opts);
    opts.log?.(`data: ${r.status} ${name} (${r.bytes} bytes, sha256 verified) from ${url}`);
    out.push(r);
  }
  return out;
}
