import "reflect-metadata";
import fs from "node:fs";
import path from "node:path";
import { buildAppSchema, printAppSchema } from "../graphql/schema";

/** Writes schema/schema.graphql from the resolvers (`npm run schema:emit`). */
async function main(): Promise<void> {
  const target = path.resolve(__dirname, "../../../schema/schema.graphql");
  const sdl = printAppSchema(await buildAppSchema());
  fs.writeFileSync(target, sdl);
  process.stdout.write(`wrote ${path.relative(process.cwd(), target)} (${sdl.length} bytes)\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
