import { Arg, Ctx, FieldResolver, ID, Mutation, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { Extension } from "../extension/extension.entity";
import type { ExtensionRow } from "../extension/extension.service";
import { CallHandling, CallHandlingInput } from "./call-handling.types";

@Resolver(() => Extension)
export class ExtensionCallHandlingResolver {
  @FieldResolver(() => CallHandling, { description: "Forwarding, do-not-disturb and ring time (contract §12); the defaults until changed." })
  callHandling(@Root() extension: ExtensionRow, @Ctx() ctx: RequestContext) {
    return ctx.services.callHandling.of(ctx, extension.id);
  }

  @Mutation(() => CallHandling, {
    description: "A field left out keeps its value; a forward given as null is removed. An extension.updated event and audit entry follow a change.",
  })
  updateCallHandling(@Arg("extensionId", () => ID) extensionId: string, @Arg("input", () => CallHandlingInput) input: CallHandlingInput, @Ctx() ctx: RequestContext) {
    return ctx.services.callHandling.update(ctx, extensionId, input);
  }
}
