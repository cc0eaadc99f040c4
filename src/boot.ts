/**
 * Imported first by main.ts, before anything heavy: every module required after this one is
 * compiled through the on-disk V8 code cache (server/compile-cache.ts).
 */
import { CHECKOUT_ROOT, installCompileCache } from "./server/compile-cache";

export const compileCache = installCompileCache(CHECKOUT_ROOT);
