import type { GraphQLResolveInfo } from "graphql";
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root } from "type-graphql";
import { extensionPrefetch } from "../../graphql/extension-prefetch";
import type { RequestContext } from "../../context/request-context";
import { connectionComplexity, connectionType } from "../../graphql/connection";
import { Tenant } from "../tenant/tenant.entity";
import { ExtensionsArgs } from "./extension.args";
import { Extension } from "./extension.entity";
import { CreateExtensionInput, UpdateExtensionInput } from "./extension.inputs";
import type { ExtensionRow } from "./extension.service";
import { parseJsonRecords, readCsvRecords } from "./extension-import";
import { ImportFormat, ImportMode, ImportResult } from "./extension-import.types";

export const ExtensionConnection = connectionType(Extension, "Extension");

@Resolver(() => Extension)
export class ExtensionResolver {
  @Query(() => Extension, { description: "One extension; another tenant's answers NOT_FOUND." })
  extension(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.extensions.get(ctx, id);
  }

  @Query(() => ExtensionConnection, { complexity: connectionComplexity })
  extensions(@Args() { tenantId, ...args }: ExtensionsArgs, @Ctx() ctx: RequestContext, @Info() info: GraphQLResolveInfo) {
    return ctx.services.extensions.list(ctx, tenantId, { ...args, prefetch: extensionPrefetch(info) });
  }

  @FieldResolver(() => Tenant)
  async tenant(@Root() extension: ExtensionRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.tenant.load(extension.tenantId);
  }

  @Mutation(() => Extension)
  createExtension(@Arg("input", () => CreateExtensionInput) input: CreateExtensionInput, @Ctx() ctx: RequestContext) {
    return ctx.services.extensions.create(ctx, input);
  }

  @Mutation(() => Extension)
  updateExtension(
    @Arg("id", () => ID) id: string,
    @Arg("input", () => UpdateExtensionInput) input: UpdateExtensionInput,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.services.extensions.update(ctx, id, input);
  }

  @Mutation(() => ID, { description: "Refused with CONFLICT while the extension is a queue agent, unless force." })
  deleteExtension(
    @Arg("id", () => ID) id: string,
    @Arg("force", () => Boolean, { defaultValue: false }) force: boolean,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.services.extensions.delete(ctx, id, force);
  }

  @Mutation(() => ImportResult, {
    description:
      "Bulk import (CSV with a header line, or a JSON array; REST field names). All or nothing: a file with a failing row writes nothing and names every failing line.",
  })
  importExtensions(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("format", () => ImportFormat) format: ImportFormat,
    @Arg("data", () => String) data: string,
    @Arg("dryRun", () => Boolean, { defaultValue: false }) dryRun: boolean,
    @Arg("mode", () => ImportMode, { defaultValue: ImportMode.CREATE }) mode: ImportMode,
    @Ctx() ctx: RequestContext,
  ) {
    const read = () => (format === ImportFormat.CSV ? readCsvRecords(data) : Promise.resolve(parseJsonRecords(data)));
    return ctx.services.extensionImport.run(ctx, tenantId, read, { dryRun, mode });
  }

  @Mutation(() => String, { description: "Sets a new random SIP secret and returns it, this once." })
  rotateExtensionSecret(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.extensions.rotateSecret(ctx, id);
  }
}
