import fs from "node:fs";
import { initdbTemplatePath, makeInitdbTemplate } from "../db/embedded";

/**
 * `node dist/src/cli/pglite-template.js [FILE]`: makes the embedded engine's initdb template (run by
 * the prepare script, where an existing one is kept, and by a server whose template is missing, in a
 * child process).
 */
const file = process.argv[2] ?? initdbTemplatePath();
(process.argv[2] === undefined && fs.existsSync(file) ? Promise.resolve() : makeInitdbTemplate(file)).catch((error: unknown) => {
  process.stderr.write(`could not make the embedded database template: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
