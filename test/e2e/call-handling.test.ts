import "reflect-metadata";
import {
  AddQueueAgentDocument,
  AddRingGroupMemberDocument,
  AuditLogDocument,
  CreateQueueDocument,
  CreateRingGroupDocument,
  DeleteExtensionDocument,
  DeleteRingGroupDocument,
  ExtensionCallHandlingDocument,
  QueueStatsNowDocument,
  RemoveRingGroupMemberDocument,
  RingGroupDocument,
  RingGroupsDocument,
  TenantRingGroupsDocument,
  UpdateCallHandlingDocument,
  UpdateExtensionDocument,
  UpdateRingGroupDocument,
  CreateExtensionDocument,
} from "../graphql/generated";
import { createExtension, tenantWithKeys } from "../support/factories";
import { startTestServer, type GraphQLResponse, type TestServer } from "../support/server";

/** Contract §12 over the API: call handling (GraphQL and REST) and ring groups, across tenants. */
let ts: TestServer;
let a: Awaited<ReturnType<typeof tenantWithKeys>>;
let b: Awaited<ReturnType<typeof tenantWithKeys>>;

beforeAll(async () => {
  ts = await startTestServer();
  a = await tenantWithKeys(ts, { maxExtensions: 100 });
  b = await tenantWithKeys(ts, { maxExtensions: 100 });
});
afterAll(() => ts?.stop());

const err = (r: GraphQLResponse<unknown>) => r.errors?.[0];
const handling = async (id: string, key = a.adminKey) => (await ts.ok(ExtensionCallHandlingDocument, { id }, key)).extension.callHandling;
const stored = async (id: string) => (await ts.server.db.dataSource.query(`SELECT * FROM call_handling WHERE id = $1`, [Number(id)]))[0];
const rest = (path: string, method = "GET", body?: unknown, key = a.adminKey) =>
  ts.http(path, { method, key, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });

describe("an extension's call handling", () => {
  it("has the defaults until changed; a field left out keeps its value and a forward given as null is removed", async () => {
    const alice = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    const bob = await createExtension(ts, a.tenant.id, { voicemailEnabled: true }, a.adminKey);
    expect(await handling(alice.id)).toEqual({ doNotDisturb: false, ringSeconds: 25, forwardAlways: null, forwardBusy: null, forwardNoAnswer: null });

    const set = await ts.ok(UpdateCallHandlingDocument, {
      extensionId: alice.id,
      input: { ringSeconds: 5, forwardBusy: { type: "EXTENSION", target: bob.extensionNumber }, forwardNoAnswer: { type: "VOICEMAIL", target: bob.extensionNumber } },
    }, a.adminKey);
    expect(set.updateCallHandling).toEqual({
      doNotDisturb: false,
      ringSeconds: 5,
      forwardAlways: null,
      forwardBusy: { type: "EXTENSION", target: bob.extensionNumber },
      forwardNoAnswer: { type: "VOICEMAIL", target: bob.extensionNumber },
    });
    const again = await ts.ok(UpdateCallHandlingDocument, { extensionId: alice.id, input: { doNotDisturb: true, forwardBusy: null } }, a.adminKey);
    expect(again.updateCallHandling).toMatchObject({ doNotDisturb: true, ringSeconds: 5, forwardBusy: null, forwardNoAnswer: { type: "VOICEMAIL" } });
    expect(await handling(alice.id)).toEqual(again.updateCallHandling);

    // Audited as an update of the extension, with only what changed.
    const { auditLog } = await ts.ok(AuditLogDocument, { tenantId: a.tenant.id, filter: { entityType: "extension", entityId: alice.id, action: "extension.updated" } });
    expect(auditLog.nodes.map((n) => n.changes)).toEqual([
      { doNotDisturb: [false, true], forwardBusy: [`EXTENSION:${bob.extensionNumber}`, null] },
      { ringSeconds: [25, 5], forwardBusy: [null, `EXTENSION:${bob.extensionNumber}`], forwardNoAnswer: [null, `VOICEMAIL:${bob.extensionNumber}`] },
    ]);
    // extension.updated is recorded for webhooks with the new call handling.
    const [event] = await ts.server.db.dataSource.query(
      `SELECT payload FROM event_log WHERE tenant_id = $1 AND kind = 'extensions' ORDER BY sequence DESC LIMIT 1`,
      [Number(a.tenant.id)],
    );
    expect(event.payload).toMatchObject({ type: "UPDATED", extension: { id: Number(alice.id) }, callHandling: { doNotDisturb: true, forwardBusy: null } });
  });

  it("refuses bad input on the field, changing nothing: ring time out of range, unknown or foreign targets, forwarding to itself, voicemail not enabled", async () => {
    const ext = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    const theirs = await createExtension(ts, b.tenant.id, {}, b.adminKey);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ringSeconds: 4 }, "ringSeconds"],
      [{ ringSeconds: 121 }, "ringSeconds"],
      [{ forwardAlways: { type: "EXTENSION", target: "99999" } }, "forwardAlways"],
      [{ forwardBusy: { type: "EXTENSION", target: theirs.extensionNumber } }, "forwardBusy"],
      [{ forwardBusy: { type: "EXTENSION", target: ext.extensionNumber } }, "forwardBusy"],
      [{ forwardNoAnswer: { type: "VOICEMAIL", target: ext.extensionNumber } }, "forwardNoAnswer"],
      [{ forwardNoAnswer: { type: "RING_GROUP", target: "99998" } }, "forwardNoAnswer"],
      [{ forwardAlways: { type: "EXTERNAL", target: "0123" } }, "forwardAlways"],
    ];
    for (const [input, field] of cases) {
      const r = await ts.gql(UpdateCallHandlingDocument, { extensionId: ext.id, input: { doNotDisturb: true, ...input } as never }, a.adminKey);
      expect([JSON.stringify(input), err(r)?.extensions?.code, Object.keys(err(r)?.extensions?.fields ?? {})]).toEqual([JSON.stringify(input), "BAD_USER_INPUT", [field]]);
    }
    expect(await stored(ext.id)).toBeUndefined();
  });

  it("is another tenant's to read or change never, and a VIEWER's to read only", async () => {
    const ext = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    expect(err(await ts.gql(ExtensionCallHandlingDocument, { id: ext.id }, b.adminKey))?.extensions?.code).toBe("NOT_FOUND");
    expect(err(await ts.gql(UpdateCallHandlingDocument, { extensionId: ext.id, input: { doNotDisturb: true } }, b.adminKey))?.extensions?.code).toBe("NOT_FOUND");
    expect(err(await ts.gql(UpdateCallHandlingDocument, { extensionId: ext.id, input: { doNotDisturb: true } }, a.viewerKey))?.extensions?.code).toBe("FORBIDDEN");
    expect((await handling(ext.id, a.viewerKey)).doNotDisturb).toBe(false);
    expect((await rest(`/api/extensions/${ext.id}/call-handling`, "GET", undefined, b.adminKey)).status).toBe(404);
    expect((await rest(`/api/extensions/${ext.id}/call-handling`, "PUT", { do_not_disturb: true }, b.adminKey)).status).toBe(404);
    expect((await rest(`/api/extensions/${ext.id}/call-handling`, "PUT", { do_not_disturb: true }, a.viewerKey)).status).toBe(403);
    expect(await stored(ext.id)).toBeUndefined();
  });

  it("over REST: GET and PUT /api/extensions/{id}/call-handling in snake_case, types in lower case, 422 on the field", async () => {
    const ext = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    const other = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    const get = await rest(`/api/extensions/${ext.id}/call-handling`);
    expect([get.status, await get.json()]).toEqual([200, { data: { do_not_disturb: false, ring_seconds: 25, forward_always: null, forward_busy: null, forward_no_answer: null } }]);
    const put = await rest(`/api/extensions/${ext.id}/call-handling`, "PUT", { ring_seconds: 30, forward_always: { type: "extension", target: other.extensionNumber } });
    expect([put.status, await put.json()]).toEqual([
      200,
      { data: { do_not_disturb: false, ring_seconds: 30, forward_always: { type: "extension", target: other.extensionNumber }, forward_busy: null, forward_no_answer: null } },
    ]);
    const bad = await rest(`/api/extensions/${ext.id}/call-handling`, "PUT", { forward_busy: { type: "extension", target: "424242" }, ring_seconds: 2 });
    expect(bad.status).toBe(422);
    expect(Object.keys(((await bad.json()) as { errors: object }).errors).sort()).toEqual(["ring_seconds"]);
    const badTarget = await rest(`/api/extensions/${ext.id}/call-handling`, "PUT", { forward_busy: { type: "extension", target: "424242" } });
    expect([badTarget.status, Object.keys(((await badTarget.json()) as { errors: object }).errors)]).toEqual([422, ["forward_busy"]]);
    expect((await rest(`/api/extensions/${ext.id}/call-handling`, "PUT", [1])).status).toBe(400);
    expect((await rest(`/api/extensions/${ext.id}/call-handling`, "DELETE")).status).toBe(405);
    expect(await handling(ext.id)).toMatchObject({ ringSeconds: 30, forwardBusy: null, forwardAlways: { type: "EXTENSION", target: other.extensionNumber } });
  });

  it("a forward follows its target's new number; deleting the target is refused while forwarded to, and force turns the forward into HANGUP", async () => {
    const ext = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    const target = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    await ts.ok(UpdateCallHandlingDocument, { extensionId: ext.id, input: { forwardAlways: { type: "EXTENSION", target: target.extensionNumber } } }, a.adminKey);
    const refused = await ts.gql(DeleteExtensionDocument, { id: target.id }, a.adminKey);
    expect(err(refused)?.extensions?.code).toBe("CONFLICT");
    expect(err(refused)?.message).toContain(`extension ${ext.extensionNumber}`);
    await ts.ok(DeleteExtensionDocument, { id: target.id, force: true }, a.adminKey);
    expect((await handling(ext.id)).forwardAlways).toEqual({ type: "HANGUP", target: null });
  });

  it("the wallboard counts an agent on do-not-disturb as unavailable", async () => {
    const agent = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    const { createQueue } = await ts.ok(CreateQueueDocument, { input: { tenantId: a.tenant.id, name: "DND queue", number: "8801" } }, a.adminKey);
    await ts.ok(AddQueueAgentDocument, { queueId: createQueue.id, extensionId: agent.id }, a.adminKey);
    const stats = async () => (await ts.ok(QueueStatsNowDocument, { id: createQueue.id })).queue.stats;
    expect(await stats()).toMatchObject({ agentsTotal: 1, agentsAvailable: 1, agentsPaused: 0 });
    await ts.ok(UpdateCallHandlingDocument, { extensionId: agent.id, input: { doNotDisturb: true } }, a.adminKey);
    expect(await stats()).toMatchObject({ agentsTotal: 1, agentsAvailable: 0, agentsPaused: 1, agentsBusy: 0 });
    await ts.ok(UpdateCallHandlingDocument, { extensionId: agent.id, input: { doNotDisturb: false } }, a.adminKey);
    expect(await stats()).toMatchObject({ agentsAvailable: 1 });
  });
});

describe("ring groups", () => {
  const create = (input: Record<string, unknown>, key = a.adminKey) =>
    ts.gql(CreateRingGroupDocument, { input: { tenantId: a.tenant.id, name: `Group ${input.number}`, ...input } as never }, key);

  it("creates with the defaults, lists by tenant, adds members in order, and refuses another tenant's extension or a second membership", async () => {
    const [m1, m2] = [await createExtension(ts, a.tenant.id, {}, a.adminKey), await createExtension(ts, a.tenant.id, {}, a.adminKey)];
    const theirs = await createExtension(ts, b.tenant.id, {}, b.adminKey);
    const group = (await create({ number: "6001", name: "Sales team" })).data!.createRingGroup;
    expect(group).toMatchObject({ tenantId: a.tenant.id, name: "Sales team", number: "6001", strategy: "SIMULTANEOUS", ringSeconds: 20, fallback: { type: "HANGUP", target: null }, members: [] });
    const first = (await ts.ok(AddRingGroupMemberDocument, { ringGroupId: group.id, extensionId: m2.id }, a.adminKey)).addRingGroupMember;
    expect(first.position).toBe(1);
    await ts.ok(AddRingGroupMemberDocument, { ringGroupId: group.id, extensionId: m1.id, position: 0 }, a.adminKey);
    expect((await ts.ok(RingGroupDocument, { id: group.id })).ringGroup.members.map((m) => m.extension.id)).toEqual([m1.id, m2.id]);
    expect(err(await ts.gql(AddRingGroupMemberDocument, { ringGroupId: group.id, extensionId: m1.id }, a.adminKey))?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(err(await ts.gql(AddRingGroupMemberDocument, { ringGroupId: group.id, extensionId: theirs.id }, a.adminKey))?.extensions?.code).toBe("NOT_FOUND");
    expect(err(await ts.gql(AddRingGroupMemberDocument, { ringGroupId: group.id, extensionId: m1.id, position: -1 }, a.adminKey))?.extensions?.fields).toHaveProperty("position");

    expect((await ts.ok(TenantRingGroupsDocument, { id: a.tenant.id })).tenant?.ringGroups.map((g) => g.id)).toContain(group.id);
    expect((await ts.ok(RingGroupsDocument, {}, b.adminKey)).ringGroups).toEqual([]);
    expect(err(await ts.gql(RingGroupDocument, { id: group.id }, b.adminKey))?.extensions?.code).toBe("NOT_FOUND");
    expect(err(await ts.gql(DeleteRingGroupDocument, { id: group.id }, b.adminKey))?.extensions?.code).toBe("NOT_FOUND");
    expect(err(await ts.gql(RemoveRingGroupMemberDocument, { id: first.id }, b.adminKey))?.extensions?.code).toBe("NOT_FOUND");
    expect(err(await create({ number: "6009" }, a.viewerKey))?.extensions?.code).toBe("FORBIDDEN");
    await ts.ok(RemoveRingGroupMemberDocument, { id: first.id }, a.adminKey);
    expect((await ts.ok(RingGroupDocument, { id: group.id })).ringGroup.members.map((m) => m.extension.id)).toEqual([m1.id]);
  });

  it("shares the tenant's dial plan with extensions and queues, also on rename", async () => {
    const ext = await createExtension(ts, a.tenant.id, { extensionNumber: "6101" }, a.adminKey);
    const clash = await create({ number: "6101" });
    expect([err(clash)?.extensions?.code, err(clash)?.message]).toEqual(["CONFLICT", "The number 6101 is already used by extension 6101."]);
    const group = (await create({ number: "6102", name: "Night" })).data!.createRingGroup;
    const byExt = await ts.gql(UpdateExtensionDocument, { id: ext.id, input: { extensionNumber: "6102" } }, a.adminKey);
    expect([err(byExt)?.extensions?.code, err(byExt)?.message]).toEqual(["CONFLICT", 'The number 6102 is already used by ring group "Night".']);
    const byQueue = await ts.gql(CreateQueueDocument, { input: { tenantId: a.tenant.id, name: "Q", number: "6102" } }, a.adminKey);
    expect(err(byQueue)?.extensions?.code).toBe("CONFLICT");
    const byRename = await ts.gql(UpdateRingGroupDocument, { id: group.id, input: { number: "6101" } }, a.adminKey);
    expect(err(byRename)?.extensions?.code).toBe("CONFLICT");
    const created = await ts.gql(CreateExtensionDocument, { input: { tenantId: b.tenant.id, extensionNumber: "6102", secret: "other-tenant-ok" } }, b.adminKey);
    expect(created.errors).toBeUndefined();
  });

  it("validates its fields and fallback, and follows a forward or fallback pointing at it through rename and delete", async () => {
    expect(Object.keys(err(await create({ number: "61x" }))?.extensions?.fields ?? {})).toEqual(["number"]);
    expect(Object.keys(err(await create({ number: "6201", ringSeconds: 200 }))?.extensions?.fields ?? {})).toEqual(["ringSeconds"]);
    expect(Object.keys(err(await create({ number: "6201", fallback: { type: "EXTENSION", target: "55555" } }))?.extensions?.fields ?? {})).toEqual(["fallback"]);
    const vm = await createExtension(ts, a.tenant.id, { voicemailEnabled: true }, a.adminKey);
    const group = (await create({ number: "6201", strategy: "SEQUENTIAL", ringSeconds: 5, fallback: { type: "VOICEMAIL", target: vm.extensionNumber } })).data!.createRingGroup;
    expect(group).toMatchObject({ strategy: "SEQUENTIAL", ringSeconds: 5, fallback: { type: "VOICEMAIL", target: vm.extensionNumber } });

    const caller = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    await ts.ok(UpdateCallHandlingDocument, { extensionId: caller.id, input: { forwardNoAnswer: { type: "RING_GROUP", target: "6201" } } }, a.adminKey);
    await ts.ok(UpdateRingGroupDocument, { id: group.id, input: { number: "6202" } }, a.adminKey);
    expect((await handling(caller.id)).forwardNoAnswer).toEqual({ type: "RING_GROUP", target: "6202" });
    const refused = await ts.gql(DeleteRingGroupDocument, { id: group.id }, a.adminKey);
    expect(err(refused)?.extensions?.code).toBe("CONFLICT");
    expect(err(refused)?.message).toContain(`extension ${caller.extensionNumber}`);
    expect(await ts.ok(DeleteRingGroupDocument, { id: group.id, force: true }, a.adminKey)).toEqual({ deleteRingGroup: group.id });
    expect((await handling(caller.id)).forwardNoAnswer).toEqual({ type: "HANGUP", target: null });
  });

  it("deleting a member extension is refused (409 naming the group) unless force, which leaves the group in the same transaction", async () => {
    const member = await createExtension(ts, a.tenant.id, {}, a.adminKey);
    const group = (await create({ number: "6301", name: "Support crew" })).data!.createRingGroup;
    await ts.ok(AddRingGroupMemberDocument, { ringGroupId: group.id, extensionId: member.id }, a.adminKey);
    const refused = await ts.gql(DeleteExtensionDocument, { id: member.id }, a.adminKey);
    expect([err(refused)?.extensions?.code, err(refused)?.message]).toEqual([
      "CONFLICT",
      "The extension is a member of ring group Support crew; remove it from that ring group first or pass force.",
    ]);
    const res = await rest(`/api/extensions/${member.id}`, "DELETE");
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ queues: [], ring_groups: [{ id: Number(group.id), name: "Support crew", number: "6301" }] });
    await ts.ok(DeleteExtensionDocument, { id: member.id, force: true }, a.adminKey);
    expect((await ts.ok(RingGroupDocument, { id: group.id })).ringGroup.members).toEqual([]);
    const { auditLog } = await ts.ok(AuditLogDocument, { tenantId: a.tenant.id, filter: { entityType: "ring_group_member" } });
    expect(auditLog.nodes[0]).toMatchObject({ action: "ring_group_member.removed", changes: { ringGroupId: [group.id, null], extensionId: [member.id, null] } });
  });
});
