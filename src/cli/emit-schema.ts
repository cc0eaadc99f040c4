import "reflect-metadata";
import fs from "node:fs";
import path from "node:path";
import { buildAppSchema, printAppSchema } from "../graphql/schema";

/**
 * `npm run schema:emit` writes schema/schema.graphql from the resolvers;
 * `npm run schema:check` (CI) fails when the committed file differs from them.
 */
async function main(): Promise<void> {
  const target = path.resolve(__dirname, "../../../schema/schema.graphql");
  const sdl = printAppSchema(await buildAppSchema());
  const shown = path.relative(process.cwd(), target);
  if (process.argv.includes("--check")) {
    const committed = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
    if (committed !== sdl) {
      process.stderr.write(`${shown} is stale: run \`npm run schema:emit\` and commit it\n`);
      process.exit(1);
    }
    process.stdout.write(`${shown} matches the resolvers\n`);
    return;
  }
  fs.writeFileSync(target, sdl);
  process.stdout.write(`wrote ${shown} (${sdl.length} bytes)\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
