import { parseArgs } from "node:util";
import pg from "pg";
import { ConfigError, loadConfig } from "../config/config";
import { ENGINE_VIEWS, EngineRoleError, ensureEngineRole } from "../engine/engine-role";

const HELP = `Usage: npm run engine:role -- --name NAME --password PASSWORD

Creates, or sets the password of, the PostgreSQL LOGIN role a SIP engine (Kamailio) connects as.
The role may SELECT the views made for the engine (${ENGINE_VIEWS.join(", ")}) and nothing else of the product.
Run it again after applying new migrations: it grants the views they added.

  --name NAME          the role (lower-case SQL identifier)
  --password PASSWORD  its password (at least 12 characters)
  --help               this text

Environment: DATABASE_URL (required; a role that owns the product's schema),
DATABASE_SCHEMA (the product's schema when it is not the connection's default).
Then start Kamailio with KAMAILIO_DB_URL=postgres://NAME:PASSWORD@HOST:PORT/DB (see the README).
`;

interface Output {
  write(text: string): unknown;
}

/** The command, given its arguments and environment; answers the exit code (in-process for the tests). */
export async function runEngineRole(argv: string[], env: NodeJS.ProcessEnv, stdout: Output, stderr: Output): Promise<number> {
  let values: { name?: string; password?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: { name: { type: "string" }, password: { type: "string" }, help: { type: "boolean" } },
    }));
  } catch (error) {
    stderr.write(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    stdout.write(HELP);
    return 0;
  }
  if (!values.name || !values.password) {
    stderr.write(`--name and --password are required\n\n${HELP}`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    stderr.write(`${error.message}\n`);
    return 2;
  }
  if (!config.databaseUrl) {
    stderr.write("DATABASE_URL is not set: the engine role lives in PostgreSQL (the embedded database has no roles to log in as)\n");
    return 2;
  }
  const client = new pg.Client({ connectionString: config.databaseUrl, application_name: "pbx-engine-role" });
  await client.connect();
  try {
    const { created, schema } = await ensureEngineRole(client, { name: values.name, password: values.password, schema: config.databaseSchema });
    stdout.write(`${created ? "created" : "updated"} role ${values.name}: SELECT on ${ENGINE_VIEWS.map((v) => `${schema}.${v}`).join(", ")} only\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof EngineRoleError)) throw error;
    stderr.write(`${error.message}\n`);
    return 1;
  } finally {
    await client.end();
  }
}

if (require.main === module) {
  runEngineRole(process.argv.slice(2), process.env, process.stdout, process.stderr).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
