import v8 from "node:v8";

/**
 * The embedded engine (PGlite) is 9 MB of WebAssembly. V8 runs it first as baseline (Liftoff) code
 * and recompiles a function with its optimising compiler once that function has run about 1.8 MB of
 * its code (the tiering budget). Opening a data directory and the first queries cross that budget for
 * hundreds of functions that then never run hot again: on a restart V8 spent 0.4–0.6 s of CPU (a third
 * of PGlite's open, ~35 MiB of code) optimising them. A budget 100 times larger optimises only what
 * keeps running. Call before anything is compiled (the code cache's entries record V8's flags); a
 * --wasm-tiering-budget given to node wins.
 */
export const WASM_TIERING_BUDGET = 180_000_000;

export function applyWasmTieringBudget(): void {
  if (!process.execArgv.some((arg) => arg.startsWith("--wasm-tiering-budget"))) v8.setFlagsFromString(`--wasm-tiering-budget=${WASM_TIERING_BUDGET}`);
}
