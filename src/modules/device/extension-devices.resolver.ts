import { Ctx, FieldResolver, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { listComplexity } from "../../graphql/list-complexity";
import { Extension } from "../extension/extension.entity";
import type { ExtensionRow } from "../extension/extension.service";
import { Device } from "./device.entity";

export const EXPECTED_DEVICES_PER_EXTENSION = 5;

/** The device edges of Extension, kept with the device module. */
@Resolver(() => Extension)
export class ExtensionDevicesResolver {
  @FieldResolver(() => [Device], {
    description: "Its devices: registered ones first, then the most recently registered.",
    complexity: listComplexity(EXPECTED_DEVICES_PER_EXTENSION),
  })
  devices(@Root() extension: ExtensionRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.devicesByExtension.load(extension.id);
  }

  @FieldResolver(() => Boolean, { description: "Whether any of its devices is registered now." })
  registered(@Root() extension: ExtensionRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.registeredByExtension.load(extension.id);
  }
}
