import { Ctx, FieldResolver, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { listComplexity } from "../../graphql/list-complexity";
import { Extension } from "../extension/extension.entity";
import type { ExtensionRow } from "../extension/extension.service";
import { QueueAgent } from "./queue-agent.entity";

export const EXPECTED_MEMBERSHIPS_PER_EXTENSION = 5;

/** The queue edge of Extension, kept with the queue module. */
@Resolver(() => Extension)
export class ExtensionQueuesResolver {
  @FieldResolver(() => [QueueAgent], {
    description: "The queues it is an agent of, as memberships, in enrolment order.",
    complexity: listComplexity(EXPECTED_MEMBERSHIPS_PER_EXTENSION),
  })
  queueMemberships(@Root() extension: ExtensionRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.membershipsByExtension.load(extension.id);
  }
}
