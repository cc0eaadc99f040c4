import { Args, Ctx, Query, Resolver } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { connectionComplexity, connectionType } from "../../graphql/connection";
import { AuditEntry } from "./audit-entry.type";
import { AuditLogArgs } from "./audit.inputs";

export const AuditEntryConnection = connectionType(AuditEntry, "AuditEntry");

@Resolver(() => AuditEntry)
export class AuditResolver {
  @Query(() => AuditEntryConnection, { complexity: connectionComplexity, description: "The audit trail, newest first. ADMIN, or a TENANT_ADMIN for its own tenant." })
  auditLog(@Args() args: AuditLogArgs, @Ctx() ctx: RequestContext) {
    return ctx.services.audit.list(ctx, args);
  }
}
