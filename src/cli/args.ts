import { parseArgs, type ParseArgsConfig } from "node:util";
import { loadDotEnv } from "../config/dotenv";

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * The CLIs' one way to read their command line: `.env` loaded like the server does, `--help` prints
 * the usage and exits 0, an unknown flag or a stray argument prints the usage and exits 2, before
 * anything runs.
 */
export function cliArgs<T extends Options>(usage: string, options: T, argv = process.argv.slice(2)) {
  loadDotEnv();
  try {
    const { values } = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false });
    if ((values as { help?: boolean }).help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return values as ReturnType<typeof parseArgs<{ options: T; strict: true }>>["values"];
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
}
