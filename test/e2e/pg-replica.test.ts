import { createTenant } from "../support/factories";
import { PgNode, requirePgBinaries, startPrimary, startReplica } from "../support/pg-cluster";
import { startTestServer, type TestServer } from "../support/server";
import { scrapeMetric, waitFor } from "../support/wait";

/**
 * Issue 25 item 2, contract §14: DATABASE_REPLICA_URL with read-your-writes, on a real streaming
 * replica (pg_basebackup -R of a primary this suite starts on 25440/25441). Replay on the replica is
 * paused with pg_wal_replay_pause(): a read without x-pbx-read-after is answered by the replica (it
 * does not see the write: proof of the routing), a read with the mutation's x-pbx-write-lsn waits
 * REPLICA_WAIT_MS and is answered by the primary (it sees the write); once replay resumes the
 * replica answers it at once. A replica stopped: reads go to the primary.
 */
const run = requirePgBinaries() ? describe : describe.skip;
const WAIT_MS = 1500;

const LIST = "query List($t: ID!) { extensions(tenantId: $t, first: 100) { nodes { id extensionNumber } } }";
const CREATE = "mutation Create($input: CreateExtensionInput!) { createExtension(input: $input) { id extensionNumber } }";

run("PostgreSQL read replica with read-your-writes", () => {
  let primary: PgNode;
  let replica: PgNode;
  let ts: TestServer;
  let tenantId: string;

  beforeAll(async () => {
    primary = await startPrimary("pbx-primary", 25440);
    replica = await startReplica(primary, "pbx-replica", 25441);
    await primary.query("CREATE SCHEMA pbx");
    ts = await startTestServer({
      redis: false,
      env: { DATABASE_URL: primary.url(), DATABASE_SCHEMA: "pbx", DATABASE_REPLICA_URL: replica.url(), REPLICA_WAIT_MS: String(WAIT_MS) },
    });
    tenantId = (await createTenant(ts)).id;
  }, 180_000);

  afterAll(async () => {
    await ts?.stop();
    await replica?.stop();
    await primary?.stop();
  }, 60_000);

  const post = async (query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const started = performance.now();
    const res = await ts.http("/graphql", { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ query, variables }) });
    return { res, body: (await res.json()) as { data?: Record<string, unknown>; errors?: Array<{ message: string; extensions?: { code?: string } }> }, ms: performance.now() - started };
  };
  const numbersIn = (body: { data?: Record<string, unknown> }) =>
    ((body.data?.extensions as { nodes: Array<{ extensionNumber: string }> }).nodes ?? []).map((n) => n.extensionNumber);
  const reads = (target: string) => scrapeMetric(`${ts.url}/metrics`, "pbx_db_reads_total", { target });
  const replayPaused = async () => (await replica.query<{ s: string }>("SELECT pg_get_wal_replay_pause_state() AS s"))[0]!.s === "paused";
  let n = 7000;

  test("a mutation answers x-pbx-write-lsn; with replay paused a plain read comes from the replica, a read-after read waits and the primary answers", async () => {
    // Settled first: everything so far replayed, then replay paused.
    const warm = await post(CREATE, { input: { tenantId, extensionNumber: String(++n), secret: "s3cur3p@ss-long" } });
    const warmLsn = warm.res.headers.get("x-pbx-write-lsn");
    expect(warmLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const warmRead = await post(LIST, { t: tenantId }, { "x-pbx-read-after": warmLsn! });
    expect(numbersIn(warmRead.body)).toContain(String(n));
    await replica.query("SELECT pg_wal_replay_pause()");
    await waitFor("replay paused on the replica", replayPaused);

    const number = String(++n);
    const created = await post(CREATE, { input: { tenantId, extensionNumber: number, secret: "s3cur3p@ss-long" } });
    expect(created.body.errors).toBeUndefined();
    const lsn = created.res.headers.get("x-pbx-write-lsn")!;
    expect(lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    // The primary holds it.
    expect((await primary.query<{ n: number }>("SELECT count(*)::int AS n FROM pbx.extension WHERE extension_number = $1", [number]))[0]!.n).toBe(1);

    // Without the token: the replica answers, and it has not replayed the write.
    const replicaBefore = await reads("replica");
    const stale = await post(LIST, { t: tenantId });
    expect(stale.res.status).toBe(200);
    expect(numbersIn(stale.body)).not.toContain(number);
    expect(numbersIn(stale.body)).toContain(String(n - 1));
    expect(await reads("replica")).toBe(replicaBefore + 1);

    // With it: waits REPLICA_WAIT_MS for the replica, then the primary answers — the client reads its write.
    const laggingBefore = await reads("primary_lagging");
    const own = await post(LIST, { t: tenantId }, { "x-pbx-read-after": lsn });
    expect(numbersIn(own.body)).toContain(number);
    expect(own.ms).toBeGreaterThanOrEqual(WAIT_MS - 50);
    expect(await reads("primary_lagging")).toBe(laggingBefore + 1);

    // The same on REST: GET /api/extensions.
    const restStale = await ts.http(`/api/extensions?tenant_id=${tenantId}&per_page=100`);
    expect(((await restStale.json()) as { data: Array<{ extension_number: string }> }).data.map((e) => e.extension_number)).not.toContain(number);
    const restOwn = await ts.http(`/api/extensions?tenant_id=${tenantId}&per_page=100`, { headers: { "x-pbx-read-after": lsn } });
    expect(((await restOwn.json()) as { data: Array<{ extension_number: string }> }).data.map((e) => e.extension_number)).toContain(number);

    // A REST write answers the header too.
    const restCreated = await ts.http("/api/extensions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenant_id: tenantId, extension_number: String(++n), secret: "s3cur3p@ss-long" }),
    });
    expect(restCreated.status).toBe(201);
    expect(restCreated.headers.get("x-pbx-write-lsn")).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

    // Replay resumes: the replica catches up and answers the read-after read itself, without the wait.
    await replica.query("SELECT pg_wal_replay_resume()");
    const replicaNow = await reads("replica");
    const caughtUp = await post(LIST, { t: tenantId }, { "x-pbx-read-after": restCreated.headers.get("x-pbx-write-lsn")! });
    expect(numbersIn(caughtUp.body)).toEqual(expect.arrayContaining([number, String(n)]));
    expect(caughtUp.ms).toBeLessThan(WAIT_MS);
    expect(await reads("replica")).toBe(replicaNow + 1);
  }, 60_000);

  test("a malformed x-pbx-read-after is refused with 400 on GraphQL and REST, and nothing is read", async () => {
    const gql = await post(LIST, { t: tenantId }, { "x-pbx-read-after": "yesterday" });
    expect(gql.res.status).toBe(400);
    expect(gql.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(gql.body.errors?.[0]?.message).toMatch(/x-pbx-read-after/);
    const rest = await ts.http(`/api/extensions?tenant_id=${tenantId}`, { headers: { "x-pbx-read-after": "0/zz" } });
    expect(rest.status).toBe(400);
    expect(((await rest.json()) as { message: string }).message).toMatch(/x-pbx-read-after/);
    // A refused mutation changes nothing either.
    const before = numbersIn((await post(LIST, { t: tenantId })).body).length;
    const refused = await post(CREATE, { input: { tenantId, extensionNumber: String(++n), secret: "s3cur3p@ss-long" } }, { "x-pbx-read-after": "nope" });
    expect(refused.res.status).toBe(400);
    expect((await primary.query<{ n: number }>("SELECT count(*)::int AS n FROM pbx.extension WHERE extension_number = $1", [String(n)]))[0]!.n).toBe(0);
    expect(numbersIn((await post(LIST, { t: tenantId }, { "x-pbx-read-after": "0/0" })).body).length).toBe(before);
  }, 30_000);

  test("with the replica stopped, reads (with or without the token) are answered by the primary", async () => {
    await replica.kill("SIGINT");
    const number = String(++n);
    const created = await post(CREATE, { input: { tenantId, extensionNumber: number, secret: "s3cur3p@ss-long" } });
    const lsn = created.res.headers.get("x-pbx-write-lsn")!;
    const downBefore = await reads("primary_replica_down");
    const plain = await post(LIST, { t: tenantId });
    expect(plain.res.status).toBe(200);
    expect(numbersIn(plain.body)).toContain(number);
    const own = await post(LIST, { t: tenantId }, { "x-pbx-read-after": lsn });
    expect(numbersIn(own.body)).toContain(number);
    expect(own.ms).toBeLessThan(WAIT_MS);
    expect(await reads("primary_replica_down")).toBeGreaterThan(downBefore);
    const ready = await ts.http("/readyz");
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { replica?: boolean }).replica).toBe(false);
  }, 30_000);
});
