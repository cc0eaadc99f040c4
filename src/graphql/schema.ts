import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
import { DateTimeResolver } from "graphql-scalars";
import { buildSchema } from "type-graphql";
import { ApiKeyResolver } from "../modules/api-key/api-key.resolver";
import { ExtensionResolver } from "../modules/extension/extension.resolver";
import { TenantResolver } from "../modules/tenant/tenant.resolver";

export const resolvers = [TenantResolver, ExtensionResolver, ApiKeyResolver] as const;

/**
 * Builds the executable schema. Validation is not TypeGraphQL's job here: the service layer runs
 * the class-validator rules, so REST and GraphQL share them.
 */
export function buildAppSchema(): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [...resolvers],
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    validate: false,
  });
}

/** The committed SDL (schema/schema.graphql): sorted, so diffs show real changes only. */
export function printAppSchema(schema: GraphQLSchema): string {
  return printSchema(lexicographicSortSchema(schema)) + "\n";
}
