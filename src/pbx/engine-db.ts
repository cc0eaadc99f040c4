import pg from "pg";
import { ensureEngineRole } from "../engine/engine-role";

/** The engine's least-privilege role (contract §7), made or given a new password by the engine:role code. */
export async function ensureEngineRoleAt(databaseUrl: string, schema: string | undefined, name: string, password: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: "pbx-supervisor" });
  await client.connect();
  try {
    await ensureEngineRole(client, { name, password, schema });
  } finally {
    await client.end();
  }
}
