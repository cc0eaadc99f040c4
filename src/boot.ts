/**
 * Imported first by main.ts, before anything heavy: every module required after this one is
 * compiled through the on-disk V8 code cache (server/compile-cache.ts), with PGlite's WASM tiering
 * budget set first (db/wasm-tiering.ts).
 */
import { applyWasmTieringBudget } from "./db/wasm-tiering";
import { CHECKOUT_ROOT, installCompileCache } from "./server/compile-cache";

applyWasmTieringBudget();

export const compileCache = installCompileCache(CHECKOUT_ROOT);
