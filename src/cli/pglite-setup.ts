import { applyWasmTieringBudget } from "../db/wasm-tiering";
import "reflect-metadata";
import { setupEmbeddedDir } from "../db/embedded-setup";

/**
 * `node dist/src/cli/pglite-setup.js DIR TEMPLATE migrate|no-migrate`: the first-time setup of a
 * new embedded DATA_DIR, run by the server in a child process (see `openEmbedded`) under the
 * server's DATA_DIR lock. Not meant to be run by hand.
 */
applyWasmTieringBudget();
const [dir, template, mode] = process.argv.slice(2);
if (!dir || !template || (mode !== "migrate" && mode !== "no-migrate")) {
  process.stderr.write("usage: node dist/src/cli/pglite-setup.js DIR TEMPLATE migrate|no-migrate\n");
  process.exit(2);
}
// The server that started us died: stop rather than write into a directory its next start discards.
process.on("disconnect", () => process.exit(1));
// The IPC channel would keep us alive: exit once the engine is shut down.
setupEmbeddedDir(dir, template, mode === "migrate").then(() => process.exit(0)).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
