/**
 * The static imports of a TypeScript module, read from its text: what the dependency-direction test
 * (lib/layers_test.ts) checks and what a run's code hash follows (lib/runner/identity.ts). A regex
 * reader rather than a parser, written for this codebase's `deno fmt` style: statements start a line,
 * `import type` / `export type` mark type-only edges, and a dynamic `import("...")` with a literal
 * specifier counts (a computed one, like the FFN loader's, does not, on purpose). `imports_test.ts`
 * checks it against `deno info` on the whole tree.
 *
 * @module
 */

/** One import edge of a module. */
export interface ImportEdge {
  /** The specifier as written (`./x.ts`, `@tensorflow/tfjs-core`, `node:path`, `npm:yaml@2`). */
  specifier: string;
  /** `import type` / `export type`: erased at run time, so it cannot change what a module computes. */
  typeOnly: boolean;
}

// `import x from "s"`, `import { a, type b } from "s"`, `import * as x from "s"`, `import type ... from "s"`,
// `export { a } from "s"`, `export * from "s"`, `export type { a } from "s"`; clauses may span lines.
const FROM = /^[ \t]*(import|export)\s+(type\s+)?([\w$*{},\s]*?)\s*from\s*["']([^"']+)["']/gm;
const BARE = /^[ \t]*import\s*["']([^"']+)["']/gm;
const DYNAMIC = /\bimport\(\s*["']([^"'$`]+)["']\s*\)/g;

/** The import edges of a module's source text, in order of appearance, one per statement. */
export function parseImports(source: string): ImportEdge[] {
  const edges: { at: number; edge: ImportEdge }[] = [];
  for (const m of source.matchAll(FROM)) {
    if (m[1] === "export" && !/^\s*(\*|\{)/.test(m[3])) continue; // `export const x = ... from "..."` is not an edge
    // `import { type A, type B } from`: every named import is a type, so the edge is type-only too.
    const names = m[3].replace(/[{}]/g, " ").split(",").map((x) => x.trim()).filter(Boolean);
    const allTypes = m[3].trim().startsWith("{") && names.length > 0 && names.every((n) => n.startsWith("type "));
    edges.push({ at: m.index!, edge: { specifier: m[4], typeOnly: Boolean(m[2]) || allTypes } });
  }
  for (const m of source.matchAll(BARE)) edges.push({ at: m.index!, edge: { specifier: m[1], typeOnly: false } });
  for (const m of source.matchAll(DYNAMIC)) {
    const line = source.lastIndexOf("\n", m.index!) + 1;
    if (/^\s*(\*|\/\/)/.test(source.slice(line, m.index!))) continue; // in a comment
    edges.push({ at: m.index!, edge: { specifier: m[1], typeOnly: false } });
  }
  return edges.sort((a, b) => a.at - b.at).map((e) => e.edge);
}

/** Local import targets of a module file (relative, absolute or `file:` specifiers), as absolute paths. */
export async function localImports(path: string): Promise<{ path: string; typeOnly: boolean }[]> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  return parseImports(await Deno.readTextFile(path))
    .filter((e) => /^(\.\.?\/|\/|file:)/.test(e.specifier))
    .map((e) => ({
      path: e.specifier.startsWith("file:")
        ? decodeURIComponent(new URL(e.specifier).pathname)
        : normalize(e.specifier.startsWith("/") ? e.specifier : `${dir}/${e.specifier}`),
      typeOnly: e.typeOnly,
    }));
}

/** Collapses `.` and `..` segments of an absolute POSIX path. */
function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== "." && part !== "") out.push(part);
  }
  return `/${out.join("/")}`;
}
