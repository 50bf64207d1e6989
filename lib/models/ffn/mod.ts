/**
 * The FFN variant interface. Variants themselves (`dense.ts`, ...) are loaded dynamically by
 * `loadFfn(kind)` in lib/models/variants.ts and are deliberately not re-exported here.
 *
 * @module
 */
export type { FfnContext, FfnParams, FfnVariant, ParamInit, ParamSpec } from "./types.ts";
