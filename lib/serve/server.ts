/**
 * `deno task serve`: the dashboard over HTTP (Deno.serve). Read-only: every route maps to a fixed page
 * or asset, run hashes and experiment ids are checked against their patterns before they reach a path,
 * SQL runs on lib/store/readonly.ts's read-only connection, and the server listens on 127.0.0.1 unless
 * another host is asked for.
 *
 * @module
 */
import { experimentList, experimentPage, liveRuns, type Source } from "./data.ts";
import { liveUpdate, runPage } from "./run_data.ts";
import { compare, CompareError } from "./compare.ts";
import { comparePageHtml, experimentPageHtml, indexPage, messagePage, runPageHtml, sqlPage } from "./pages.ts";
import { asset, ASSETS } from "./assets.ts";
import { queryReadOnly, QueryRefusedError, QuerySqlError } from "../store/readonly.ts";
import { StoreLockedError } from "../store/mod.ts";

/** Rows the SQL box returns at most (the rest is counted, not sent). */
export const SQL_ROW_LIMIT = 2000;

const htmlResponse = (body: string, status = 200) =>
  new Response(body, {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      // Scripts only from this origin; no framing; nothing is fetched from elsewhere.
      "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
      "x-content-type-options": "nosniff",
    },
  });
const json = (value: unknown, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json; charset=utf-8" } });

function notFound(what: string, root: string): Response {
  return htmlResponse(messagePage({ title: "Not found", message: what, root, mode: "serve" }), 404);
}

/** The request handler (exported for tests). */
export function handler(src: Source): (req: Request) => Promise<Response> {
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return new Response("bad path", { status: 400 });
    }
    // Nothing is served by file path, but say so plainly for traversal attempts.
    if (path.includes("..") || path.includes("\\") || path.includes("\0")) {
      return new Response("refused: path outside the dashboard", { status: 400 });
    }
    try {
      if (req.method === "POST" && path === "/api/sql") return await sqlApi(src, req);
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("read-only", { status: 405 });
      if (path === "/" || path === "/index.html") {
        const live = await liveRuns(src);
        return htmlResponse(indexPage({ experiments: await experimentList(src, { live }), live, mode: "serve" }));
      }
      let m = path.match(/^\/assets\/([a-z0-9_.-]+)$/);
      if (m) {
        if (!(m[1] in ASSETS)) return new Response("no such asset", { status: 404 });
        const a = await asset(m[1]);
        return new Response(a.body, { headers: { "content-type": a.type, "cache-control": "no-cache" } });
      }
      if ((m = path.match(/^\/exp\/([^/]+)\.html$/))) {
        const page = await experimentPage(src, m[1]);
        return page ? htmlResponse(experimentPageHtml(page, "serve")) : notFound(`no experiment ${m[1]}`, "../");
      }
      if ((m = path.match(/^\/run\/([^/]+)\.html$/))) {
        const page = await runPage(src, m[1]);
        return page ? htmlResponse(runPageHtml(page, "serve")) : notFound(`no run ${m[1]} in the cache`, "../");
      }
      if (path === "/compare.html") {
        const refs = (url.searchParams.get("runs") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
        return await comparePage(src, refs, "");
      }
      if ((m = path.match(/^\/compare\/([^/]+)\.html$/))) {
        return await comparePage(src, await compareRefs(src, m[1]), "../");
      }
      if (path === "/sql.html") return htmlResponse(sqlPage({ sql: url.searchParams.get("q") ?? DEFAULT_SQL }));
      if (path === "/api/live") {
        const after: Record<string, number> = {};
        for (const part of (url.searchParams.get("runs") ?? "").split(",")) {
          const [h, n] = part.split(":");
          if (h) after[h] = Number(n) || 0;
        }
        return json(await liveUpdate(src, after));
      }
      return notFound(`no page ${path}`, "/");
    } catch (e) {
      if (e instanceof StoreLockedError) {
        return htmlResponse(
          messagePage({ title: "Busy", message: `${e.message} Reload in a moment.`, root: "/", mode: "serve" }),
          503,
        );
      }
      console.error(`serve: ${req.method} ${path}: ${(e as Error).stack ?? e}`);
      return htmlResponse(
        messagePage({ title: "Error", message: (e as Error).message, root: "/", mode: "serve" }),
        500,
      );
    }
  };
}

const DEFAULT_SQL = "SELECT experiment, variant, n_completed, val_ppl_mean, val_ppl_std\nFROM variant_stats\n" +
  "ORDER BY experiment, val_ppl_mean";

/**
 * What `compare/<name>.html` compares: for an experiment id, all its variants; for a run hash, the run's
 * parent and the run. Null when the name is neither.
 */
export async function compareRefs(src: Source, name: string): Promise<string[]> {
  if (/^[0-9a-f]{64}$/.test(name)) {
    const r = await runPage(src, name);
    return r?.parent ? [r.parent.hash, name] : [name];
  }
  const e = await experimentPage(src, name);
  return e ? e.variants.map((v) => `${name}/${v.variant}`) : [name];
}

async function comparePage(src: Source, refs: string[], root: string): Promise<Response> {
  try {
    return htmlResponse(comparePageHtml(await compare(src, refs), { mode: "serve", root }));
  } catch (e) {
    if (!(e instanceof CompareError)) throw e;
    return htmlResponse(messagePage({ title: "Cannot compare", message: e.message, root, mode: "serve" }), 400);
  }
}

async function sqlApi(src: Source, req: Request): Promise<Response> {
  let sql = "";
  try {
    sql = String((await req.json()).sql ?? "");
  } catch {
    return json({ error: 'send {"sql": "SELECT ..."}' }, 400);
  }
  if (!sql.trim()) return json({ error: "empty query" }, 400);
  try {
    const results = await queryReadOnly(src.paths.results, sql, { db: src.paths.db, lockTimeoutMs: 5000 });
    const last = results.at(-1)!.result;
    return json({
      columns: last.columns,
      rows: last.rows.slice(0, SQL_ROW_LIMIT),
      total: last.rows.length,
      statements: results.length,
    });
  } catch (e) {
    if (e instanceof QueryRefusedError || e instanceof QuerySqlError) {
      return json({ error: e.message, refused: e instanceof QueryRefusedError }, 400);
    }
    throw e;
  }
}

/** Options of {@link serve}. */
export interface ServeOptions {
  port?: number;
  /** Interface to listen on (default 127.0.0.1: this machine only). */
  hostname?: string;
  signal?: AbortSignal;
  onListen?: (addr: { hostname: string; port: number }) => void;
}

/** Starts the dashboard server; resolves once it listens. */
export function serve(src: Source, o: ServeOptions = {}): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    port: o.port ?? 8700,
    hostname: o.hostname ?? "127.0.0.1",
    signal: o.signal,
    onListen: o.onListen ?? (() => {}),
  }, handler(src));
}
