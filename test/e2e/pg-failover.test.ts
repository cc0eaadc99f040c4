import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { haproxyServerStates } from "../support/haproxy";
import os from "node:os";
import path from "node:path";
import { parse } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { createExtension, createTenant } from "../support/factories";
import { postEvents, subscribe } from "../support/live";
import { PG_BIN, PgNode, requirePgBinaries, startPrimary, startReplica } from "../support/pg-cluster";
import { freePort } from "../support/process";
import { trackChild } from "../support/run";
import { startTestServer, type TestServer } from "../support/server";
import { waitFor } from "../support/wait";

/**
 * Issue 25 item 3, contract §14: the primary lost behind one address. A primary (25442, synchronous
 * replication) and its streaming replica (25443) behind HAProxy, whose check passes only on the
 * node that is not in recovery (what Patroni's `GET /primary` answers; here a psql probe, so no
 * Patroni is needed in CI). The product's DATABASE_URL names HAProxy. While telephony events are
 * ingested and a subscription listens, the primary's postmaster is stopped by its PID (SIGQUIT:
 * immediate shutdown, what a crash looks like to clients); during the gap every request fails fast
 * with 503 + Retry-After and /readyz is 503; the replica is promoted (pg_ctl promote), HAProxy's
 * check switches, and the product serves again within 5 s of the new primary accepting writes,
 * without a restart; every acknowledged event is in the database and was delivered exactly once.
 */
const haproxyPresent = fs.existsSync("/usr/sbin/haproxy");
if (!haproxyPresent && process.env.REQUIRE_REAL_SERVICES === "1") throw new Error("REQUIRE_REAL_SERVICES=1 but haproxy is not installed");
if (!haproxyPresent) process.stderr.write("SKIPPED: this suite needs haproxy (apt-get install haproxy); it did not run.\n");
const run = requirePgBinaries() && haproxyPresent ? describe : describe.skip;

const REGISTRATIONS = parse(
  "subscription Regs($t: ID!) { registrationEvents(tenantId: $t) { sequence type extension { extensionNumber } } }",
) as TypedDocumentNode<{ registrationEvents: { sequence: string; type: string; extension: { extensionNumber: string } } }, { t: string }>;

run("PostgreSQL primary loss behind HAProxy", () => {
  /** Server name → status (UP, DOWN…) of the `postgres` proxy, from HAProxy's stats socket. */
  const haproxyStates = async () =>
    Object.fromEntries((await haproxyServerStates(path.join(dir, "haproxy.sock"))).filter((s) => s.proxy === "postgres").map((s) => [s.server, s.status]));

  let primary: PgNode;
  let replica: PgNode;
  let haproxy: ChildProcess | undefined;
  let haproxyPort: number;
  let dir: string;
  let ts: TestServer;

  beforeAll(async () => {
    // Commits are acknowledged only once the replica has them (Patroni's synchronous_mode): a promotion loses nothing acknowledged.
    primary = await startPrimary("pbx-ha-a", 25442, ["-c synchronous_standby_names=*"]);
    replica = await startReplica(primary, "pbx-ha-b", 25443);
    await primary.query("CREATE SCHEMA pbx");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-haproxy-"));
    const check = path.join(dir, "is-primary.sh");
    // HAProxy's external check: $3 $4 = the server's address and port. Passes on a node that accepts writes.
    fs.writeFileSync(
      check,
      `#!/bin/sh\nPGCONNECT_TIMEOUT=1 exec ${PG_BIN}/psql -h "$3" -p "$4" -U postgres -d postgres -XAtqc "SELECT 1 WHERE NOT pg_is_in_recovery()" 2>/dev/null | grep -q 1\n`,
      { mode: 0o755 },
    );
    haproxyPort = await freePort();
    fs.writeFileSync(
      path.join(dir, "haproxy.cfg"),
      [
        "global",
        "  external-check",
        "  insecure-fork-wanted",
        "  maxconn 256",
        `  stats socket ${path.join(dir, "haproxy.sock")} level admin`,
        "defaults",
        "  mode tcp",
        "  timeout connect 1s",
        "  timeout client 30m",
        "  timeout server 30m",
        "  timeout check 5s",
        "listen postgres",
        `  bind 127.0.0.1:${haproxyPort}`,
        "  balance first",
        "  option external-check",
        '  external-check path "/usr/bin:/bin"',
        `  external-check command ${check}`,
        // A psql check is slow on a loaded machine: it gets 5 s to answer, so that a live primary is not
        // marked down (which cuts the sessions it serves); a killed one refuses at once.
        "  default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions",
        `  server a 127.0.0.1:${primary.port} check`,
        `  server b 127.0.0.1:${replica.port} check`,
        "",
      ].join("\n"),
    );
    const haproxyLog = fs.openSync(path.join(dir, "haproxy.log"), "a");
    haproxy = trackChild(spawn("/usr/sbin/haproxy", ["-db", "-f", path.join(dir, "haproxy.cfg")], { stdio: ["ignore", "ignore", haproxyLog] }));
    fs.closeSync(haproxyLog);
    const viaHaproxy = new PgNode("haproxy", dir, haproxyPort, []);
    // HAProxy counts a server UP until its checks say otherwise: wait until they have spoken.
    await waitFor("HAProxy's checks: a UP, b DOWN", async () => {
      const states = await haproxyStates();
      return states.a === "UP" && states.b === "DOWN";
    }, 30_000);
    ts = await startTestServer({ redis: false, env: { DATABASE_URL: viaHaproxy.url(), DATABASE_SCHEMA: "pbx", EVENT_RELAY_POLL_MS: "200" } });
  }, 240_000);

  afterAll(async () => {
    if (process.env.PG_FAILOVER_DEBUG) process.stderr.write(fs.readFileSync(path.join(dir, "haproxy.log"), "utf8"));
    await ts?.stop();
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((resolve) => haproxy!.once("exit", resolve));
      haproxy.kill("SIGTERM");
      await exited;
    }
    await replica?.stop();
    await primary?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test("fails fast with 503 + Retry-After during the gap, serves again within 5 s of the promotion, nothing lost or reported twice", async () => {
    const tenant = await createTenant(ts, { maxExtensions: 500 });
    const numbers: string[] = [];
    for (let i = 0; i < 60; i++) numbers.push((await createExtension(ts, tenant.id, { extensionNumber: String(3000 + i) })).extensionNumber);
    const live = await subscribe(ts, REGISTRATIONS, { t: tenant.id }, ts.adminKey);

    /** Each number registers once: 200 = acknowledged (must never be lost), anything else = not applied (or not known). */
    const acked = new Set<string>();
    const unsure = new Set<string>();
    let next = 0;
    const register = async () => {
      const number = numbers[next++]!;
      const started = performance.now();
      const res = await postEvents(ts, ts.adminKey, {
        type: "registration", action: "register", domain: tenant.sipDomain, extension: number,
        contact: `sip:${number}@192.0.2.9:5060`, user_agent: "failover-test", source_address: "192.0.2.9:5060", transport: "udp", expires: 3600,
      });
      (res.status === 200 ? acked : unsure).add(number);
      return { status: res.status, ms: performance.now() - started };
    };
    for (let i = 0; i < 10; i++) expect((await register()).status).toBe(200);

    // The primary lost: its postmaster stopped by PID, mid-traffic.
    const writer = (async () => {
      for (let i = 0; i < 5; i++) await register();
    })();
    await primary.kill("SIGQUIT");
    await writer;
    const lostAt = performance.now();

    // The gap: every door answers 503 + Retry-After at once, none hangs, none answers 500.
    const gap: Array<{ what: string; status: number; retryAfter: string | null; ms: number }> = [];
    const timed = async (what: string, request: () => Promise<Response>) => {
      const started = performance.now();
      const res = await request();
      gap.push({ what, status: res.status, retryAfter: res.headers.get("retry-after"), ms: performance.now() - started });
      await res.arrayBuffer();
    };
    await waitFor("HAProxy to mark the old primary down", async () => {
      await timed("readyz", () => fetch(`${ts.url}/readyz`));
      return gap[gap.length - 1]!.status === 503;
    }, 10_000);
    gap.length = 0;
    for (let round = 0; round < 3; round++) {
      await timed("readyz", () => fetch(`${ts.url}/readyz`));
      await timed("graphql query", () =>
        ts.http("/graphql", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: `{ extensions(tenantId: "${tenant.id}") { totalCount } }` }) }),
      );
      await timed("graphql mutation", () =>
        ts.http("/graphql", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: `mutation { createExtension(input: { tenantId: "${tenant.id}", extensionNumber: "39${round}", secret: "s3cur3p@ss-long" }) { id } }` }),
        }),
      );
      await timed("rest get", () => ts.http(`/api/extensions?tenant_id=${tenant.id}`));
      const r = await register();
      gap.push({ what: "ingest", status: r.status, retryAfter: "1", ms: r.ms });
    }
    process.stderr.write(`pg-failover gap answers: ${JSON.stringify(gap.map((g) => `${g.what} ${g.status} ${Math.round(g.ms)}ms`))}\n`);
    for (const g of gap) {
      expect({ what: g.what, status: g.status }).toEqual({ what: g.what, status: 503 });
      expect(g.retryAfter).toMatch(/^\d+$/);
      expect(g.ms).toBeLessThan(3_000);
    }

    // Promotion (what Patroni does): once the new primary accepts writes, the product serves within 5 s.
    await replica.promote();
    const writable = await waitFor("the promoted node to accept writes", async () => {
      const rows = await replica.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r").catch(() => [{ r: true }]);
      return rows[0]!.r === false ? performance.now() : undefined;
    }, 30_000, 10);
    const served = await waitFor("the product to serve a mutation again", async () => {
      const res = await ts.http("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: `mutation { createExtension(input: { tenantId: "${tenant.id}", extensionNumber: "3999", secret: "s3cur3p@ss-long" }) { id } }` }),
      });
      const body = (await res.json()) as { errors?: unknown[] };
      return res.status === 200 && !body.errors ? performance.now() : undefined;
    }, 15_000, 50);
    const recoveryMs = served - writable;
    process.stderr.write(`pg-failover: primary lost → promoted node writable ${Math.round(writable - lostAt)} ms (includes the gap probes); writable → product serves ${Math.round(recoveryMs)} ms\n`);
    expect(recoveryMs).toBeLessThan(5_000);
    expect((await fetch(`${ts.url}/readyz`)).status).toBe(200);

    // Traffic goes on, then: nothing acknowledged lost, nothing delivered twice.
    while (next < numbers.length) expect((await register()).status).toBe(200);
    const stored = await replica.query<{ n: string }>(
      "SELECT e.extension_number AS n FROM pbx.device d JOIN pbx.extension e ON e.id = d.extension_id WHERE e.tenant_id = $1",
      [tenant.id],
    );
    const registered = new Set(stored.map((r) => r.n));
    for (const number of acked) expect(registered).toContain(number);
    const deliveredNow = () => live.received.map((m) => m.data?.registrationEvents).filter((e) => e !== undefined && e !== null);
    await waitFor("every acknowledged registration delivered", () => [...acked].every((n) => deliveredNow().some((e) => e!.extension.extensionNumber === n)), 15_000);
    // (The last acknowledged event was committed after the recovery: a re-sent older one would have come before it.)
    const delivered = deliveredNow();
    const sequences = delivered.map((e) => e!.sequence);
    expect(new Set(sequences).size).toBe(sequences.length);
    const perNumber = new Map<string, number>();
    for (const e of delivered) perNumber.set(e!.extension.extensionNumber, (perNumber.get(e!.extension.extensionNumber) ?? 0) + 1);
    for (const [number, count] of perNumber) {
      expect({ number, count }).toEqual({ number, count: 1 });
      expect(acked.has(number) || unsure.has(number)).toBe(true);
    }
    process.stderr.write(`pg-failover: ${acked.size} events acknowledged (all stored, each delivered once), ${unsure.size} refused during the gap, ${delivered.length} delivered\n`);
    await live.close();
  }, 180_000);
});
