import { AppError } from "../../src/common/errors";
import { validateDestination } from "../../src/modules/call-destination/call-destination";
import { CallDestinationType } from "../../src/modules/call-destination/call-destination.type";
import { CreateQueueDocument } from "../graphql/generated";
import { createExtension, createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

/**
 * Contract §11 "Destinations": the one validator every resource with a destination uses, run on the
 * real database (the embedded one or PostgreSQL, whichever the run has).
 */
describe("call destinations: validateDestination", () => {
  let ts: TestServer;
  let tenant: { id: string };
  let other: { id: string };
  beforeAll(async () => {
    ts = await startTestServer();
    [tenant, other] = await Promise.all([createTenant(ts), createTenant(ts)]);
    await createExtension(ts, tenant.id, { extensionNumber: "2001" });
    await createExtension(ts, tenant.id, { extensionNumber: "2002", voicemailEnabled: true });
    await createExtension(ts, other.id, { extensionNumber: "3001", voicemailEnabled: true });
    await ts.ok(CreateQueueDocument, { input: { tenantId: tenant.id, name: "Sales", number: "700" } });
    await ts.ok(CreateQueueDocument, { input: { tenantId: other.id, name: "Theirs", number: "701" } });
  }, 60_000);
  afterAll(() => ts?.stop());

  const check = (input: unknown, tenantId = tenant.id, field = "destination") =>
    validateDestination(ts.server.db.dataSource.manager, Number(tenantId), input as never, field);
  const refusal = async (input: unknown, field = "destination", tenantId = tenant.id) => {
    const error = await check(input, tenantId, field).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("BAD_USER_INPUT");
    expect(Object.keys((error as AppError).fields ?? {})).toEqual([field]);
    return (error as AppError).fields![field].join(" ");
  };

  it("accepts what exists in the tenant and returns what to store", async () => {
    expect(await check({ type: CallDestinationType.EXTENSION, target: "2001" })).toEqual({ type: "extension", target: "2001" });
    expect(await check({ type: CallDestinationType.QUEUE, target: "700" })).toEqual({ type: "queue", target: "700" });
    expect(await check({ type: CallDestinationType.VOICEMAIL, target: "2002" })).toEqual({ type: "voicemail", target: "2002" });
    expect(await check({ type: CallDestinationType.EXTERNAL, target: "+442071234567" })).toEqual({ type: "external", target: "+442071234567" });
    expect(await check({ type: CallDestinationType.HANGUP })).toEqual({ type: "hangup", target: null });
    expect(await check({ type: CallDestinationType.HANGUP, target: null })).toEqual({ type: "hangup", target: null });
  });

  it("refuses on the named field: unknown targets, another tenant's, voicemail off, bad E.164, a HANGUP target, no type", async () => {
    expect(await refusal({ type: CallDestinationType.EXTENSION, target: "2999" })).toMatch(/no extension 2999/);
    expect(await refusal({ type: CallDestinationType.EXTENSION, target: "3001" })).toMatch(/no extension 3001/);
    expect(await refusal({ type: CallDestinationType.QUEUE, target: "701" }, "forwardBusy")).toMatch(/no queue 701/);
    expect(await refusal({ type: CallDestinationType.VOICEMAIL, target: "2001" })).toMatch(/voicemail/);
    expect(await refusal({ type: CallDestinationType.VOICEMAIL, target: "3001" })).toMatch(/no extension/);
    expect(await refusal({ type: CallDestinationType.EXTERNAL, target: "02071234567" })).toMatch(/E\.164/);
    expect(await refusal({ type: CallDestinationType.EXTERNAL, target: "+0123456789" })).toMatch(/E\.164/);
    expect(await refusal({ type: CallDestinationType.EXTENSION })).toMatch(/needs a target/);
    expect(await refusal({ type: CallDestinationType.HANGUP, target: "2001" })).toMatch(/no target/);
    expect(await refusal({ type: "teleport", target: "1" })).toMatch(/must be one of/);
    expect(await refusal(null)).toMatch(/needs a type/);
    // RING_GROUP has no checker until the ring-group module registers one.
    expect(await refusal({ type: CallDestinationType.RING_GROUP, target: "800" })).toMatch(/not available|no ring group/);
  });
});
