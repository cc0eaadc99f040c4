import "reflect-metadata";
import { DataSource } from "typeorm";
import { baseDataSourceOptions } from "./src/db/data-source";

/**
 * For the TypeORM CLI (e.g. `typeorm migration:generate` while designing a migration).
 * The server itself opens its data source in src/db/data-source.ts, from the same options,
 * and also supports the embedded engine when DATABASE_URL is unset.
 */
export default new DataSource({
  ...baseDataSourceOptions(),
  url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
});
