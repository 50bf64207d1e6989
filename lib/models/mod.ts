/**
 * Models: the LLaMA-style decoder (lib/models/transformer.ts) and its pluggable FFN variants
 * (lib/models/ffn/<kind>.ts, loaded by `loadFfn(kind)` in variants.ts; none is imported statically).
 *
 * @module
 */
export * from "./transformer.ts";
export * from "./variants.ts";
