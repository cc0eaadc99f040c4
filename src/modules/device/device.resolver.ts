import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { Extension } from "../extension/extension.entity";
import { Device } from "./device.entity";
import type { DeviceRow } from "./device.service";

@Resolver(() => Device)
export class DeviceResolver {
  @Query(() => Device, { description: "One device; another tenant's answers NOT_FOUND." })
  device(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.devices.get(ctx, id);
  }

  @FieldResolver(() => Extension)
  async extension(@Root() device: DeviceRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.extension.load(device.extensionId);
  }
}
