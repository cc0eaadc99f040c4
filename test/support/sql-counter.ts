import type { DataSource, Logger } from "typeorm";

/**
 * Records every SQL statement the data source sends while `work` runs. Every statement of both
 * engines (PostgreSQL and the embedded PGlite) goes through TypeORM's query runner, which hands it to
 * the data source's logger before executing it; the logger is swapped for a recording one and put
 * back afterwards.
 */
export async function recordStatements<T>(dataSource: DataSource, work: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
  const original = dataSource.logger;
  const statements: string[] = [];
  const recording: Logger = Object.create(original);
  recording.logQuery = (query, parameters, queryRunner) => {
    statements.push(query.replace(/\s+/g, " ").trim());
    return original.logQuery(query, parameters, queryRunner);
  };
  dataSource.logger = recording;
  try {
    return { result: await work(), statements };
  } finally {
    dataSource.logger = original;
  }
}

/** Server settings that keep its periodic background passes out of a statement count. */
export const QUIET = { EXPIRY_SWEEP_MS: "3600000", EVENT_RELAY_POLL_MS: "600000", WEBHOOK_POLL_MS: "600000" };
