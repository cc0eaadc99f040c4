import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { listComplexity } from "../../graphql/list-complexity";
import { CallDestination } from "../call-destination/call-destination.type";
import { Extension } from "../extension/extension.entity";
import { Tenant } from "../tenant/tenant.entity";
import { CreateRingGroupInput, UpdateRingGroupInput } from "./ring-group.inputs";
import { fallbackOf, type RingGroupMemberRow, type RingGroupRow } from "./ring-group.service";
import { RingGroup, RingGroupMember } from "./ring-group.types";

/** Expected sizes of the plain lists, for the query cost estimate. */
const EXPECTED_GROUPS_PER_TENANT = 20;
const EXPECTED_MEMBERS_PER_GROUP = 10;

@Resolver(() => RingGroup)
export class RingGroupResolver {
  @Query(() => RingGroup, { description: "One ring group; another tenant's answers NOT_FOUND." })
  ringGroup(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.get(ctx, id);
  }

  @Query(() => [RingGroup], {
    description: "Tenant keys may omit tenantId (their own); an ADMIN without it lists every tenant's ring groups.",
    complexity: listComplexity(EXPECTED_GROUPS_PER_TENANT),
  })
  ringGroups(@Arg("tenantId", () => ID, { nullable: true }) tenantId: string | null | undefined, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.list(ctx, tenantId);
  }

  @FieldResolver(() => CallDestination, { description: "Where a call goes when no member answers (HANGUP by default)." })
  fallback(@Root() group: RingGroupRow): CallDestination {
    return fallbackOf(group);
  }

  @FieldResolver(() => [RingGroupMember], { description: "Its members in ringing order: position, then when added.", complexity: listComplexity(EXPECTED_MEMBERS_PER_GROUP) })
  members(@Root() group: RingGroupRow, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.membersOf(ctx, group.id);
  }

  @FieldResolver(() => Tenant)
  tenant(@Root() group: RingGroupRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.tenant.load(group.tenantId);
  }

  @Mutation(() => RingGroup, { description: "Its number joins the tenant's dial plan: one an extension or queue holds is refused with CONFLICT naming it." })
  createRingGroup(@Arg("input", () => CreateRingGroupInput) input: CreateRingGroupInput, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.create(ctx, input);
  }

  @Mutation(() => RingGroup, { description: "Changes what is given; destinations naming the old number follow a new one." })
  updateRingGroup(@Arg("id", () => ID) id: string, @Arg("input", () => UpdateRingGroupInput) input: UpdateRingGroupInput, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.update(ctx, id, input);
  }

  @Mutation(() => ID, { description: "Deletes the group and its memberships; refused with CONFLICT while a destination names it, unless force (those become HANGUP)." })
  deleteRingGroup(@Arg("id", () => ID) id: string, @Arg("force", () => Boolean, { defaultValue: false }) force: boolean, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.delete(ctx, id, force);
  }

  @Mutation(() => RingGroupMember, { description: "Adds an extension of the group's tenant; position defaults to after the last member." })
  addRingGroupMember(
    @Arg("ringGroupId", () => ID) ringGroupId: string,
    @Arg("extensionId", () => ID) extensionId: string,
    @Arg("position", () => Int, { nullable: true }) position: number | null | undefined,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.services.ringGroups.addMember(ctx, ringGroupId, extensionId, position);
  }

  @Mutation(() => ID, { description: "Removes the member; the extension stays." })
  removeRingGroupMember(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.removeMember(ctx, id);
  }
}

@Resolver(() => RingGroupMember)
export class RingGroupMemberResolver {
  @FieldResolver(() => Extension)
  extension(@Root() member: RingGroupMemberRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.extension.load(member.extensionId);
  }

  @FieldResolver(() => RingGroup)
  ringGroup(@Root() member: RingGroupMemberRow, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.get(ctx, member.ringGroupId);
  }
}

/** The ring-group edge of Tenant, kept with this module. */
@Resolver(() => Tenant)
export class TenantRingGroupsResolver {
  @FieldResolver(() => [RingGroup], { description: "Its ring groups, by name.", complexity: listComplexity(EXPECTED_GROUPS_PER_TENANT) })
  ringGroups(@Root() tenant: Tenant, @Ctx() ctx: RequestContext) {
    return ctx.services.ringGroups.forTenant(ctx, tenant.id);
  }
}
