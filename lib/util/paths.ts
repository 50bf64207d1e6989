/**
 * Paths of the project: the repo root and the folders under it.
 *
 * @module
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, resolve } from "node:path";

/** file:// URL -> path. */
export function fromFileUrl(url: string | URL): string {
  return fileURLToPath(url);
}

/** path -> file:// URL. */
export function toFileUrl(path: string): URL {
  return pathToFileURL(resolve(path));
}

/** The repository root (the folder holding deno.json), derived from this file's location. */
export const REPO_ROOT: string = resolve(dirname(fromFileUrl(import.meta.url)), "..", "..");

/** Folders of a project rooted at `root` (tests pass a temp root). */
export interface ProjectPaths {
  root: string;
  experiments: string;
  results: string;
  cache: string;
  plots: string;
  db: string;
}

/**
 * Standard layout: experiments/, results/{cache,plots,results.duckdb}. `FINELAB_RESULTS` moves results/,
 * `FINELAB_EXPERIMENTS` reads experiment modules from another folder.
 */
export function projectPaths(root: string = REPO_ROOT, results?: string): ProjectPaths {
  const res = results ?? Deno.env.get("FINELAB_RESULTS") ?? resolve(root, "results");
  return {
    root,
    experiments: resolve(root, Deno.env.get("FINELAB_EXPERIMENTS") || "experiments"),
    results: res,
    cache: resolve(res, "cache"),
    plots: resolve(res, "plots"),
    db: resolve(res, "results.duckdb"),
  };
}
