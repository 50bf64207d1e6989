/**
 * The `tensorflow` backend: @tensorflow/tfjs-node(-gpu) when the user installed it (never downloaded).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import { type Availability, type BackendDetails, setOrThrow } from "./common.ts";

const TF_NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;
const require_ = createRequire(import.meta.url);

/** Where an installed tfjs-node package lives, if any, and whether its native binding was built. */
function findTfNode(): { spec: string; dir: string; main: string; binding: string | null } | null {
  for (const spec of TF_NODE_PACKAGES) {
    let main: string;
    try {
      main = require_.resolve(spec);
    } catch {
      continue;
    }
    let dir = dirname(main);
    while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
    let binding: string | null = null;
    try {
      const lib = join(dir, "lib");
      for (const d of readdirSync(lib)) {
        if (d.startsWith("napi-v") && existsSync(join(lib, d, "tfjs_binding.node"))) binding = join(lib, d);
      }
    } catch { /* no lib/ */ }
    return { spec, dir, main, binding };
  }
  return null;
}

const TF_NODE_FIX = 'add "@tensorflow/tfjs-node": "npm:@tensorflow/tfjs-node@4.22.0" (or tfjs-node-gpu for CUDA) ' +
  "to the imports of deno.json and run `deno install --allow-scripts=npm:@tensorflow/tfjs-node`; its install " +
  "script downloads libtensorflow from storage.googleapis.com, so it needs that host to be reachable";

/** Available when tfjs-node(-gpu) and its native binding are installed. */
export function availability(): Availability {
  const found = findTfNode();
  if (!found) {
    return {
      ok: false,
      why: "neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed",
      fix: TF_NODE_FIX,
    };
  }
  if (!found.binding) {
    return {
      ok: false,
      why: `${found.spec} is installed at ${found.dir} but its native binding (lib/napi-v*/tfjs_binding.node) ` +
        "is missing: its install script did not run or failed",
      fix: TF_NODE_FIX,
    };
  }
  return { ok: true, why: `${found.spec} at ${found.dir}` };
}

/** Imports tfjs-node and makes it the active backend. */
export async function setup(): Promise<BackendDetails> {
  const found = findTfNode();
  const a = availability();
  if (!found || !a.ok) throw new Error(`backend "tensorflow" is unavailable: ${a.why}. To fix: ${a.fix}.`);
  // Import through the import map when the user mapped it, else by file (node resolution).
  const viaMap = (() => {
    try {
      return import.meta.resolve(found.spec);
    } catch {
      return null;
    }
  })();
  await import(viaMap ?? new URL(`file://${found.main}`).href);
  await setOrThrow("tensorflow", `Check that ${found.spec} matches tfjs-core ${tf.version_core}.`);
  return {
    package: found.spec,
    package_version: JSON.parse(readFileSync(join(found.dir, "package.json"), "utf8")).version,
  };
}
