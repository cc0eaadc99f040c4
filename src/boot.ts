/**
 * Imported first by main.ts, before anything heavy: every module required after this one is
 * compiled through the on-disk V8 code cache (server/compile-cache.ts), with PGlite's WASM tiering
 * budget set first on the embedded defaults (db/wasm-tiering.ts).
 */
import { applyWasmTieringBudget } from "./db/wasm-tiering";
import { CHECKOUT_ROOT, installCompileCache } from "./server/compile-cache";

// Only the embedded engine runs WASM worth the budget; on PostgreSQL the flag would only delay the
// optimisation of other WASM in the process (undici's HTTP parser behind fetch).
if (!process.env.DATABASE_URL) applyWasmTieringBudget();

export const compileCache = installCompileCache(CHECKOUT_ROOT);
