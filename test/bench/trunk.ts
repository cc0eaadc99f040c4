/**
 * Trunk routing cost (issue 20): call setups per second through the shipped Kamailio, and the setup
 * delay that routing adds, for three kinds of call in the same run, SIPp on both sides:
 *   - internal: an extension (SIPp UAC, digest) calls another extension (a SIPp UAS registered as it);
 *   - outbound: the same extension dials a national number: the tenant's outbound route (per-call SQL
 *     on engine_outbound_route: class, caller ID, caps), the number transformed to E.164, out to a
 *     SIPp carrier on 127.0.0.72;
 *   - inbound: a SIPp carrier on 127.0.0.73 (a trunk's inbound address) calls the tenant's DID, which
 *     rings the extension through the call handling (engine_trunk_address, engine_number, kam_*).
 * The setup delay is the time in SIPp's message trace from the authenticated INVITE (the carrier's INVITE for
 * inbound) to its 200 OK; "added by routing" is a kind's percentile minus the internal call's. Then
 * every call must have reached the product: its CDRs (internal: 2 legs, outbound and inbound: 1).
 *
 *   DATABASE_URL=… REDIS_URL=… npm run bench:trunk -- [--rate 20] [--calls 200] [--children 4]
 *
 * The server runs as its own process (bench-server.ts) in a schema of its own, removed at the end.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { SIPP, startSippServer, type SippServer } from "../support/carriers";
import { createEngineRole, freeUdpPort, SIPP_REGISTER, startKamailio, stopProcess, waitFor } from "../support/sip";
import { startBenchServer } from "./bench-server";

const CARRIER_UAS = "127.0.0.72";
const CARRIER_UAC = "127.0.0.73";

function options(): { rate: number; calls: number; children: number } {
  const { values } = parseArgs({
    strict: true,
    options: { rate: { type: "string", default: "20" }, calls: { type: "string", default: "200" }, children: { type: "string", default: "4" } },
  });
  const positive = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`);
    return n;
  };
  return { rate: positive("rate", values.rate), calls: positive("calls", values.calls), children: positive("children", values.children) };
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);

interface Run {
  ok: number;
  failed: number;
  seconds: number;
  delays: number[];
}

/** `calls` SIPp calls at `rate`/s, from `ip`, each line of `fields` in turn; the response times (ms) of the setups. */
async function sippRun(target: string, scenario: string, fields: string[], ip: string, calls: number, rate: number, extra: string[] = []): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-bench-trunk-"));
  fs.writeFileSync(path.join(dir, "fields.csv"), `SEQUENTIAL\n${fields.join("\n")}\n`);
  const local = await freeUdpPort();
  const started = Date.now();
  const messages = path.join(dir, "messages.log");
  const child = spawn(
    "sipp",
    [target, "-sf", scenario, "-inf", path.join(dir, "fields.csv"), "-i", ip, "-p", String(local), "-m", String(calls), "-r", String(rate), "-l", String(Math.max(50, rate * 4)),
      "-nostdin", "-trace_stat", "-stf", path.join(dir, "stat.csv"), "-fd", "1", "-trace_msg", "-message_file", messages, "-timeout", "120s", ...extra],
    { stdio: ["ignore", "ignore", "pipe"], cwd: dir },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  await new Promise((resolve) => child.once("exit", resolve));
  const seconds = (Date.now() - started) / 1000;
  const stat = fs.readFileSync(path.join(dir, "stat.csv"), "utf8").trim().split("\n");
  const header = stat[0].split(";");
  const last = stat[stat.length - 1].split(";");
  const col = (name: string) => Number(last[header.indexOf(name)]);
  // The setup delay of each call from SIPp's message trace (µs timestamps): the last INVITE it sent
  // (the authenticated one) to the 200 OK of that INVITE.
  const sentAt = new Map<string, number>();
  const delays: number[] = [];
  for (const block of fs.readFileSync(messages, "utf8").split(/^-{10,} /m)) {
    const when = /^(\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)/.exec(block);
    const callId = /^Call-ID:\s*(\S+)/im.exec(block)?.[1];
    const cseq = /^CSeq:\s*(\d+) INVITE/im.exec(block)?.[1];
    if (!when || !callId || !cseq) continue;
    const micros = Number(`0.${when[2].split(".")[1]}`) * 1000;
    const ms = Date.parse(`${when[1]}T${when[2].split(".")[0]}Z`) + micros;
    if (/message sent/.test(block) && /^\s*INVITE /m.test(block.split("\n").slice(1).join("\n"))) sentAt.set(`${callId} ${cseq}`, ms);
    else if (/message received/.test(block) && /^\s*SIP\/2\.0 200 /m.test(block)) {
      const sent = sentAt.get(`${callId} ${cseq}`);
      if (sent !== undefined) {
        delays.push(ms - sent);
        sentAt.delete(`${callId} ${cseq}`);
      }
    }
  }
  delays.sort((a, b) => a - b);
  if (!delays.length) throw new Error(`SIPp measured nothing (${scenario}; ${col("SuccessfulCall(C)")} calls answered): ${stderr.slice(0, 500)}`);
  fs.rmSync(dir, { recursive: true, force: true });
  // answered: the setups that got their 200 OK (SIPp counts a refused call that ends as scripted as a success)
  return { ok: delays.length, failed: col("SuccessfulCall(C)") + col("FailedCall(C)") - delays.length, seconds, delays };
}

async function main(): Promise<void> {
  const o = options();
  const redisUrl = process.env.REDIS_URL!;
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const server = await startBenchServer("trunk");
  const cleanups: Array<() => Promise<unknown>> = [() => server.stop()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-bench-trunk-"));
  cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    const gql = async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
      const res = await fetch(`http://127.0.0.1:${server.port}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${server.adminKey}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data: T; errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    };
    const domain = `bench-trunk-${server.prefix.split(":")[1]}.pbx.test`;
    const did = `+4420${String(Date.now() % 1_000_000).padStart(6, "0")}`;
    const { createTenant } = await gql<{ createTenant: { id: string } }>(`mutation($input: CreateTenantInput!) { createTenant(input: $input) { id } }`, {
      input: { name: "Bench trunks", slug: `bench-trunk-${server.prefix.split(":")[1]}`, sipDomain: domain, maxExtensions: 10 },
    });
    const tenantId = createTenant.id;
    for (const n of ["1001", "2001"]) {
      await gql(`mutation($input: CreateExtensionInput!) { createExtension(input: $input) { id } }`, { input: { tenantId, extensionNumber: n, secret: `bench-secret-${n}` } });
    }
    await gql(`mutation($input: CreatePhoneNumberInput!) { createPhoneNumber(input: $input) { id } }`, { input: { tenantId, number: did, destination: { type: "EXTENSION", target: "2001" } } });
    await gql(`mutation($id: ID!, $input: UpdateTenantInput!) { updateTenant(id: $id, input: $input) { id } }`, { id: tenantId, input: { defaultCallerIdNumber: did, maxOutboundCalls: 1000 } });

    // the carrier answering outbound calls
    const carrier: SippServer = await startSippServer(SIPP.carrierAnswers, CARRIER_UAS);
    cleanups.push(() => carrier.stop());
    const { createTrunk } = await gql<{ createTrunk: { id: string } }>(`mutation($input: CreateTrunkInput!) { createTrunk(input: $input) { id } }`, {
      input: { tenantId, name: "Bench carrier", host: CARRIER_UAS, port: carrier.port, inboundAddresses: [`${CARRIER_UAC}/32`] },
    });
    await gql(`mutation($input: CreateOutboundRouteInput!) { createOutboundRoute(input: $input) { id } }`, {
      input: { tenantId, name: "National", priority: 10, match: "^0([1-9][0-9]{9})$", transform: "+44\\1", callClass: "NATIONAL", trunkIds: [createTrunk.id] },
    });

    const role = await createEngineRole(process.env.DATABASE_URL!, server.schema);
    cleanups.push(() => role.drop());
    const kamailio = await startKamailio({ databaseUrl: role.url, redisUrl, streamKey: `${server.prefix}pbx:events`, defines: [`CHILDREN=${o.children}`] });
    cleanups.push(() => kamailio.stop());
    const target = `127.0.0.1:${kamailio.port}`;

    // 2001's phone: a SIPp UAS on a port that registered first (the registrar keeps the REGISTER's
    // source address as the contact's, so the REGISTER is sent from the port the UAS then takes)
    const phonePort = await freeUdpPort();
    fs.writeFileSync(path.join(dir, "reg.csv"), `SEQUENTIAL\n2001;${domain};[authentication username=2001 password=bench-secret-2001]\n`);
    const reg = spawn("sipp", [target, "-sf", SIPP_REGISTER, "-inf", path.join(dir, "reg.csv"), "-i", "127.0.0.1", "-p", String(phonePort), "-m", "1", "-nostdin", "-timeout", "10s"], { stdio: "ignore", cwd: dir });
    if ((await new Promise((resolve) => reg.once("exit", resolve))) !== 0) throw new Error("the phone could not register");
    const phone = spawn("sipp", ["-sf", SIPP.carrierAnswers, "-i", "127.0.0.1", "-p", String(phonePort), "-nostdin"], { stdio: "ignore", cwd: dir });
    cleanups.push(() => stopProcess(phone));
    await waitFor("2001 registered in the product", async () => (await server.db.query(`SELECT 1 FROM ${server.schema}.device d JOIN ${server.schema}.extension e ON e.id = d.extension_id WHERE e.extension_number = '2001'`)).rowCount || undefined, 10_000);

    const phoneScenario = SIPP.phoneCall;
    const carrierScenario = SIPP.carrierCalls;
    const auth = "[authentication username=1001 password=bench-secret-1001]";
    const lines = (make: (i: number) => string) => Array.from({ length: Math.min(o.calls, 1000) }, (_, i) => make(i));
    const kinds: Array<{ name: string; run: () => Promise<Run>; legs: number; direction: string }> = [
      { name: "internal (extension → extension)", legs: 2, direction: "internal", run: () => sippRun(target, phoneScenario, lines(() => `1001;${domain};${auth};2001;300`), "127.0.0.1", o.calls, o.rate, ["-auth_uri", `2001@${domain}`]) },
      {
        name: "outbound (extension → route → carrier)",
        legs: 1,
        direction: "outbound",
        // (one number: SIPp signs the digest for one -auth_uri, and the engine wants the dialled one)
        run: () => sippRun(target, phoneScenario, lines(() => `1001;${domain};${auth};02071234567;300`), "127.0.0.1", o.calls, o.rate, ["-auth_uri", `02071234567@${domain}`]),
      },
      { name: "inbound (carrier → DID → extension)", legs: 1, direction: "inbound", run: () => sippRun(target, carrierScenario, lines(() => `${did};+447700900123;300`), CARRIER_UAC, o.calls, o.rate) },
    ];
    say(`${o.calls} calls of each kind at ${o.rate}/s through Kamailio (${o.children} workers); host: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
    say("| call | answered | failed | setups/s | p50 ms | p99 ms | p50 added | p99 added | CDRs in the product |");
    say("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let base: Run | undefined;
    for (const kind of kinds) {
      const r = await kind.run();
      base ??= r;
      // every answered call reached the product: its CDR legs
      const expected = r.ok * kind.legs;
      let cdrs = 0;
      let still = 0;
      for (let last = -1; still < 50; last = cdrs) {
        cdrs = Number((await server.db.query(`SELECT count(*) AS n FROM ${server.schema}.cdr WHERE direction = $1 AND disposition = 'answered'`, [kind.direction])).rows[0].n);
        if (cdrs >= expected) break;
        still = cdrs === last ? still + 1 : 0;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const p50 = percentile(r.delays, 50);
      const p99 = percentile(r.delays, 99);
      const added = (p: number, own: number) => (r === base ? "—" : (own - percentile(base!.delays, p)).toFixed(2));
      say(`| ${kind.name} | ${r.ok} | ${r.failed} | ${(r.ok / r.seconds).toFixed(1)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${added(50, p50)} | ${added(99, p99)} | ${cdrs} of ${expected}${cdrs >= expected ? "" : " (MISSING)"} |`);
    }
    say(`load after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
    const errors = kamailio.output().split("\n").filter((l) => /\b(ERROR|CRITICAL):/.test(l));
    if (errors.length) say(`Kamailio logged ${errors.length} errors, the first: ${errors[0]}`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => process.stderr.write(`cleanup: ${String(error)}\n`));
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);

