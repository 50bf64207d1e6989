/**
 * Models: the LLaMA-style decoder (lib/models/transformer.ts) and its pluggable FFN variants
 * (lib/models/ffn/<kind>.ts, loaded by `loadFfn(kind)`; none is imported statically).
 *
 * @module
 */
export * from "./transformer.ts";
