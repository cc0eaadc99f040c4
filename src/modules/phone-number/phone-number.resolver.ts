import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { connectionComplexity, connectionType } from "../../graphql/connection";
import { Tenant } from "../tenant/tenant.entity";
import { CreatePhoneNumberInput, PhoneNumber, PhoneNumberPageArgs, UpdatePhoneNumberInput } from "./phone-number.types";

export const PhoneNumberConnection = connectionType(PhoneNumber, "PhoneNumber");

@Resolver(() => PhoneNumber)
export class PhoneNumberResolver {
  @Query(() => PhoneNumber, { description: "One phone number; another tenant's answers NOT_FOUND." })
  phoneNumber(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.phoneNumbers.get(ctx, id);
  }

  @Mutation(() => PhoneNumber, { description: "Assigns a number to a tenant (ADMIN)." })
  createPhoneNumber(@Arg("input", () => CreatePhoneNumberInput) input: CreatePhoneNumberInput, @Ctx() ctx: RequestContext) {
    return ctx.services.phoneNumbers.create(ctx, input);
  }

  @Mutation(() => PhoneNumber, { description: "Changes its label and destination (the tenant's TENANT_ADMIN or ADMIN)." })
  updatePhoneNumber(@Arg("id", () => ID) id: string, @Arg("input", () => UpdatePhoneNumberInput) input: UpdatePhoneNumberInput, @Ctx() ctx: RequestContext) {
    return ctx.services.phoneNumbers.update(ctx, id, input);
  }

  @Mutation(() => ID, { description: "Releases a number (ADMIN); refused while it is a caller ID." })
  deletePhoneNumber(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.phoneNumbers.delete(ctx, id);
  }
}

@Resolver(() => Tenant)
export class TenantPhoneNumbersResolver {
  @FieldResolver(() => PhoneNumberConnection, { complexity: connectionComplexity, description: "Its numbers, ordered by number." })
  phoneNumbers(@Root() tenant: Tenant, @Args() args: PhoneNumberPageArgs, @Ctx() ctx: RequestContext) {
    return ctx.services.phoneNumbers.listForTenant(ctx, tenant.id, args);
  }
}
