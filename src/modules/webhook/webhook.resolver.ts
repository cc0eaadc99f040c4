import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { connectionComplexity, connectionType } from "../../graphql/connection";
import { Tenant } from "../tenant/tenant.entity";
import { CreatedWebhook, CreateWebhookInput, UpdateWebhookInput, Webhook, WebhookDelivery, WebhookDeliveryPageArgs } from "./webhook.types";

export const WebhookDeliveryConnection = connectionType(WebhookDelivery, "WebhookDelivery");

/** Webhooks (contract §9): TENANT_ADMIN of the webhook's tenant, or ADMIN. */
@Resolver(() => Webhook)
export class WebhookResolver {
  @Query(() => Webhook, { description: "One webhook (TENANT_ADMIN of its tenant or ADMIN)." })
  webhook(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.webhooks.get(ctx, id);
  }

  @FieldResolver(() => WebhookDeliveryConnection, { complexity: connectionComplexity, description: "Deliveries of this webhook, newest first." })
  deliveries(@Root() webhook: Webhook, @Args() args: WebhookDeliveryPageArgs, @Ctx() ctx: RequestContext) {
    return ctx.services.webhooks.deliveries(ctx, webhook, args);
  }

  @Mutation(() => CreatedWebhook, { description: "The signing secret is in the answer, once." })
  createWebhook(@Arg("input", () => CreateWebhookInput) input: CreateWebhookInput, @Ctx() ctx: RequestContext) {
    return ctx.services.webhooks.create(ctx, input);
  }

  @Mutation(() => Webhook)
  updateWebhook(@Arg("id", () => ID) id: string, @Arg("input", () => UpdateWebhookInput) input: UpdateWebhookInput, @Ctx() ctx: RequestContext) {
    return ctx.services.webhooks.update(ctx, id, input);
  }

  @Mutation(() => ID, { description: "Deletes the webhook with its deliveries." })
  deleteWebhook(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.webhooks.delete(ctx, id);
  }

  @Mutation(() => String, { description: "A new signing secret, returned once; the old one stops signing at once." })
  rotateWebhookSecret(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.webhooks.rotateSecret(ctx, id);
  }

  @Mutation(() => WebhookDelivery, { description: "Sends a delivery again (PENDING from now, with a fresh set of attempts)." })
  redeliverWebhookDelivery(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.webhooks.redeliver(ctx, id);
  }
}

@Resolver(() => Tenant)
export class TenantWebhooksResolver {
  @FieldResolver(() => [Webhook], { description: "The tenant's webhooks (TENANT_ADMIN or ADMIN)." })
  webhooks(@Root() tenant: Tenant, @Ctx() ctx: RequestContext) {
    return ctx.services.webhooks.forTenant(ctx, tenant.id);
  }
}
