import { JSONResolver } from "graphql-scalars";
import { Field, ID, ObjectType } from "type-graphql";
import { Role } from "../../auth/role";

@ObjectType({ simpleResolvers: true, description: "Who made a change: the API key (null id for the environment's ADMIN_API_KEY), its name and role." })
export class AuditActor {
  @Field(() => ID, { nullable: true })
  apiKeyId!: string | null;

  @Field(() => String, { nullable: true })
  name!: string | null;

  @Field(() => Role)
  role!: Role;
}

@ObjectType({ simpleResolvers: true, description: "One change to a tenant's data, recorded in the same transaction as the change. Append-only." })
export class AuditEntry {
  @Field(() => ID)
  id!: string;

  @Field(() => ID, { nullable: true, description: "The tenant the change belongs to; null for platform-level API keys." })
  tenantId!: string | null;

  @Field()
  occurredAt!: Date;

  @Field({ description: "`<entityType>.<verb>`, e.g. extension.created, extension.secret_rotated, queue_agent.added." })
  action!: string;

  @Field({ description: "The entity's name in lower snake case: tenant, extension, queue, queue_agent, api_key." })
  entityType!: string;

  @Field(() => ID, { description: "The entity's GraphQL id." })
  entityId!: string;

  @Field(() => AuditActor)
  actor!: AuditActor;

  @Field(() => String, { nullable: true, description: "The x-request-id of the answer to the request that made the change." })
  requestId!: string | null;

  @Field({ description: "graphql, rest or ingest." })
  transport!: string;

  @Field(() => JSONResolver, {
    nullable: true,
    description: "Each changed field (GraphQL field names) → [before, after]; [null, value] on a create. Secrets and digests are \"[redacted]\".",
  })
  changes!: unknown;
}
