import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { speedFor, TrafficGenerator, voicemailDrops, type SimEvent, type SimTenant, type VoicemailDrop } from "./simulator/traffic";
import { toneWav } from "../modules/voicemail/wav";

/**
 * `npm run simulate -- --url http://localhost:4000 --key <ADMIN key> --tenants N --rate R [--duration S]`
 * drives realistic telephony traffic through `POST /api/events`, for demos, wallboards and
 * benchmarks. It first makes sure the demo tenants `sim-1..N` exist (with extensions and two queues
 * with agents), then sends R events per second in one batch per tick until --duration has passed
 * or it gets SIGINT/SIGTERM; on the way out it hangs up the calls it left in progress.
 * It talks to no other address than --url.
 */

const USAGE = `usage: npm run simulate -- --url <http://host:port> --key <ADMIN api key> [options]

  --url URL          the API to drive (default http://localhost:4000)
  --key KEY          an ADMIN API key (or set PBX_API_KEY); it creates the demo tenants and posts events
  --tenants N        demo tenants sim-1..N to create or reuse (default 1)
  --extensions N     extensions per tenant, numbered from 1001 (default 20)
  --rate R           events per second over every tenant (default 10)
  --duration S       stop after S seconds (default: until Ctrl-C)
  --speed X          compress call timings X times (default: chosen so the extensions keep up with the rate)
  --seed N           seed for reproducible traffic (default: random)
`;

const TICK_MS = 250;
const REPORT_EVERY_MS = 5_000;
const MAX_BATCH = 1_000;
const REQUEST_TIMEOUT_MS = 30_000;
const QUEUES = [
  { name: "Sales", number: "8001" },
  { name: "Support", number: "8002" },
];
const AGENTS_PER_QUEUE = 5;

class UsageError extends Error {}
class FatalError extends Error {}

interface Options {
  url: string;
  key: string;
  tenants: number;
  extensions: number;
  rate: number;
  duration: number | null;
  speed: number | null;
  seed: number;
}

function number(raw: string | undefined, name: string, min: number, max: number, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} must be ${integer ? "an integer" : "a number"} between ${min} and ${max}`);
  }
  return value;
}

function parseOptions(argv: string[]): Options | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        url: { type: "string" },
        key: { type: "string" },
        tenants: { type: "string" },
        extensions: { type: "string" },
        rate: { type: "string" },
        duration: { type: "string" },
        speed: { type: "string" },
        seed: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return null;
  const url = (values.url ?? "http://localhost:4000").replace(/\/+$/, "");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url is not a URL: ${url}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError("--url must be an http:// or https:// URL");
  const key = values.key ?? process.env.PBX_API_KEY;
  if (!key) throw new UsageError("--key (or PBX_API_KEY) is required: an ADMIN API key");
  return {
    url,
    key,
    tenants: number(values.tenants, "tenants", 1, 10_000, true) ?? 1,
    extensions: number(values.extensions, "extensions", 1, 9_000, true) ?? 20,
    rate: number(values.rate, "rate", 0.01, 100_000, false) ?? 10,
    duration: number(values.duration, "duration", 1, 31 * 24 * 3600, false) ?? null,
    speed: number(values.speed, "speed", 1, 10_000, false) ?? null,
    seed: number(values.seed, "seed", 0, 2 ** 32 - 1, true) ?? randomBytes(4).readUInt32BE(),
  };
}

// --- the API -------------------------------------------------------------------------------------

/** fetch says only "fetch failed"; the reason (ECONNREFUSED, timeout) is in its cause. */
const reasonOf = (error: unknown): string => ((error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message);

class Api {
  constructor(private readonly options: Options) {}

  private async request(path: string, body: unknown): Promise<Response> {
    try {
      return await fetch(this.options.url + path, {
        method: "POST",
        headers: { authorization: `Bearer ${this.options.key}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw new Error(`${path}: ${reasonOf(error)}`, { cause: error });
    }
  }

  async gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const res = await this.request("/graphql", { query, variables });
    if (res.status === 401 || res.status === 403) throw new FatalError(`the API refused the key (HTTP ${res.status})`);
    const body = (await res.json().catch(() => null)) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> } | null;
    const errors = body?.errors ?? [];
    if (errors.some((e) => e.extensions?.code === "UNAUTHENTICATED" || e.extensions?.code === "FORBIDDEN")) {
      throw new FatalError(`the API refused the key: ${errors[0].message} (an ADMIN key is needed to create the demo tenants)`);
    }
    if (errors.length || !body?.data) throw new FatalError(`GraphQL: ${errors.map((e) => e.message).join("; ") || `HTTP ${res.status}`}`);
    return body.data;
  }

  /** Posts one batch; resolves to the per-event outcomes, or throws when the batch was not processed at all. */
  async events(batch: SimEvent[]): Promise<Outcome[]> {
    const res = await this.request("/api/events", batch);
    if (res.status === 401 || res.status === 403) throw new FatalError(`the API refused the key for /api/events (HTTP ${res.status})`);
    const body = (await res.json().catch(() => null)) as { data?: Outcome[]; message?: string; errors?: Record<string, string[]> } | null;
    if (Array.isArray(body?.data)) return body.data;
    if (res.status === 422) {
      const reason = body?.errors ? firstError(body.errors) : (body?.message ?? "refused");
      return batch.map(() => ({ status: "rejected", message: reason }));
    }
    throw new Error(`/api/events: HTTP ${res.status}${body?.message ? ` ${body.message}` : ""}`);
  }

  /** Hands over one voicemail message with a short generated WAV, as the engine would (multipart). */
  async voicemail(drop: VoicemailDrop): Promise<"stored" | string> {
    const form = new FormData();
    for (const [name, value] of Object.entries(drop)) form.append(name, String(value));
    // A short tone (at most 3 s of 8 kHz audio) stands in for the caller's words.
    const audio = toneWav({ seconds: Math.min(drop.duration_seconds, 3), frequency: 300 + (drop.duration_seconds % 5) * 100 });
    form.append("audio", new Blob([audio], { type: "audio/wav" }), `${drop.message_id}.wav`);
    let res: Response;
    try {
      res = await fetch(this.options.url + "/api/voicemail", {
        method: "POST",
        headers: { authorization: `Bearer ${this.options.key}` },
        body: form,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      return `/api/voicemail: ${reasonOf(error)}`;
    }
    const body = (await res.json().catch(() => null)) as { errors?: Record<string, string[]>; message?: string } | null;
    if (res.status === 200 || res.status === 201) return "stored";
    return `voicemail ${body?.errors ? firstError(body.errors) : `HTTP ${res.status}`}`;
  }
}

interface Outcome {
  status: "applied" | "duplicate" | "ignored" | "rejected";
  message?: string;
  errors?: Record<string, string[]>;
}

const firstError = (errors: Record<string, string[]>): string => {
  const [field, messages] = Object.entries(errors)[0] ?? ["event", ["refused"]];
  return `${field}: ${messages[0]}`;
};

// --- demo tenants --------------------------------------------------------------------------------

interface TenantRow {
  id: string;
  slug: string;
  sipDomain: string;
  maxExtensions: number;
}
interface ExtensionRow {
  id: string;
  extensionNumber: string;
  voicemailEnabled: boolean;
  status: "ACTIVE" | "DISABLED";
}
interface QueueRow {
  id: string;
  number: string;
  agents: Array<{ extension: { extensionNumber: string } }>;
}

const TENANT_FIELDS = "id slug sipDomain maxExtensions";
const EXTENSION_FIELDS = "id extensionNumber voicemailEnabled status";

/** Creates what is missing of tenant sim-<i> (the tenant, its extensions, its queues and their agents) and returns it. */
async function ensureTenant(api: Api, existing: TenantRow | undefined, i: number, extensionCount: number): Promise<SimTenant> {
  let tenant = existing;
  if (!tenant) {
    ({ createTenant: tenant } = await api.gql<{ createTenant: TenantRow }>(
      `mutation ($input: CreateTenantInput!) { createTenant(input: $input) { ${TENANT_FIELDS} } }`,
      { input: { name: `Simulated tenant ${i}`, slug: `sim-${i}`, sipDomain: `sim-${i}.pbx.example`, maxExtensions: Math.max(50, extensionCount) } },
    ));
  } else if (tenant.maxExtensions < extensionCount) {
    await api.gql(`mutation ($id: ID!, $input: UpdateTenantInput!) { updateTenant(id: $id, input: $input) { id } }`, {
      id: tenant.id,
      input: { maxExtensions: extensionCount },
    });
  }

  const extensions = new Map<string, ExtensionRow>();
  let queues: QueueRow[] | undefined;
  for (let after: string | null = null; ; ) {
    const { tenant: page }: { tenant: { extensions: { nodes: ExtensionRow[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }; queues: QueueRow[] } } =
      await api.gql(
        `query ($id: ID!, $after: String) { tenant(id: $id) {
           extensions(first: 100, after: $after) { nodes { ${EXTENSION_FIELDS} } pageInfo { hasNextPage endCursor } }
           queues { id number agents { extension { extensionNumber } } } } }`,
        { id: tenant.id, after },
      );
    for (const e of page.extensions.nodes) extensions.set(e.extensionNumber, e);
    queues = page.queues;
    if (!page.extensions.pageInfo.hasNextPage) break;
    after = page.extensions.pageInfo.endCursor;
  }

  const wanted = Array.from({ length: extensionCount }, (_, n) => String(1001 + n));
  for (const [n, extensionNumber] of wanted.entries()) {
    if (extensions.has(extensionNumber)) continue;
    const { createExtension } = await api.gql<{ createExtension: ExtensionRow }>(
      `mutation ($input: CreateExtensionInput!) { createExtension(input: $input) { ${EXTENSION_FIELDS} } }`,
      {
        input: {
          tenantId: tenant.id,
          extensionNumber,
          displayName: `Sim user ${extensionNumber}`,
          // Never shown: the simulator speaks for the SIP engine, which has already authenticated the phones.
          secret: randomBytes(18).toString("base64url"),
          voicemailEnabled: n % 3 === 0,
        },
      },
    );
    extensions.set(extensionNumber, createExtension);
  }

  const active = wanted.map((number) => extensions.get(number)!).filter((e) => e.status === "ACTIVE");
  const simQueues = [];
  for (const [q, spec] of QUEUES.entries()) {
    let queue = queues?.find((x) => x.number === spec.number);
    if (!queue) {
      const { createQueue } = await api.gql<{ createQueue: { id: string; number: string } }>(
        `mutation ($input: CreateQueueInput!) { createQueue(input: $input) { id number } }`,
        { input: { tenantId: tenant.id, name: spec.name, number: spec.number, strategy: "LEAST_RECENT" } },
      );
      queue = { ...createQueue, agents: [] };
    }
    if (queue.agents.length === 0 && active.length) {
      const agents = Array.from({ length: Math.min(AGENTS_PER_QUEUE, active.length) }, (_, n) => active[(q * AGENTS_PER_QUEUE + n) % active.length]);
      for (const [penalty, agent] of agents.entries()) {
        await api.gql(`mutation ($q: ID!, $e: ID!, $p: Int) { addQueueAgent(queueId: $q, extensionId: $e, penalty: $p) { id } }`, {
          q: queue.id,
          e: agent.id,
          p: penalty,
        });
        queue.agents.push({ extension: { extensionNumber: agent.extensionNumber } });
      }
    }
    simQueues.push({ number: queue.number, agents: queue.agents.map((a) => a.extension.extensionNumber).filter((n) => active.some((e) => e.extensionNumber === n)) });
  }
  return {
    domain: tenant.sipDomain,
    extensions: active.map((e) => ({ number: e.extensionNumber, voicemailEnabled: e.voicemailEnabled })),
    queues: simQueues,
  };
}

async function ensureTenants(api: Api, options: Options): Promise<SimTenant[]> {
  const { tenants } = await api.gql<{ tenants: TenantRow[] }>(`{ tenants { ${TENANT_FIELDS} } }`);
  const bySlug = new Map(tenants.map((t) => [t.slug, t]));
  const result: SimTenant[] = new Array(options.tenants);
  let next = 0;
  // A few tenants at a time: setup is a few hundred small mutations for a large --tenants.
  const worker = async () => {
    for (let i = next++; i < options.tenants; i = next++) result[i] = await ensureTenant(api, bySlug.get(`sim-${i + 1}`), i + 1, options.extensions);
  };
  await Promise.all(Array.from({ length: Math.min(4, options.tenants) }, worker));
  return result;
}

// --- the run -------------------------------------------------------------------------------------

class Tally {
  sent = 0;
  accepted = 0;
  rejected = 0;
  failed = 0;
  voicemails = 0;
  readonly outcomes: Record<string, number> = { applied: 0, duplicate: 0, ignored: 0 };
  readonly reasons = new Map<string, number>();

  record(outcomes: Outcome[]): void {
    for (const o of outcomes) {
      if (o.status === "rejected") {
        this.rejected++;
        const reason = o.errors && Object.keys(o.errors).length ? firstError(o.errors) : (o.message ?? "refused");
        this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
      } else {
        this.accepted++;
        this.outcomes[o.status] = (this.outcomes[o.status] ?? 0) + 1;
      }
    }
  }

  fail(count: number, reason: string): void {
    this.failed += count;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + count);
  }
}

async function send(api: Api, events: SimEvent[], tally: Tally): Promise<void> {
  for (let i = 0; i < events.length; i += MAX_BATCH) {
    const batch = events.slice(i, i + MAX_BATCH);
    tally.sent += batch.length;
    try {
      tally.record(await api.events(batch));
    } catch (error) {
      if (error instanceof FatalError) throw error;
      tally.fail(batch.length, (error as Error).message);
      continue;
    }
    // Unanswered calls to extensions with voicemail leave a message once their leg has ended.
    for (const drop of voicemailDrops(batch)) {
      const result = await api.voicemail(drop);
      if (result === "stored") tally.voicemails++;
      else tally.reasons.set(result, (tally.reasons.get(result) ?? 0) + 1);
    }
  }
}

const out = (line: string): void => void process.stdout.write(line + "\n");

async function main(): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!options) {
    process.stdout.write(USAGE);
    return 0;
  }
  const api = new Api(options);

  let stopping = false;
  let wake = (): void => undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    out(`${signal}: hanging up the calls in progress and stopping (again to quit at once)`);
    wake();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  out(`Preparing ${options.tenants} demo tenant(s) (sim-1..sim-${options.tenants}) on ${options.url} ...`);
  const tenants = await ensureTenants(api, options);
  const extensionCount = tenants.reduce((n, t) => n + t.extensions.length, 0);
  if (extensionCount === 0) throw new FatalError("the demo tenants have no active extension");
  const speed = options.speed ?? speedFor(options.rate, extensionCount);
  out(
    `${tenants.length} tenant(s), ${extensionCount} extensions, ${tenants.reduce((n, t) => n + t.queues.length, 0)} queues; ` +
      `${options.rate} events/s for ${options.duration ? `${options.duration} s` : "as long as you like (Ctrl-C stops)"}, seed ${options.seed}` +
      (speed > 1 ? `; call timings ${speed.toFixed(1)}x faster than real time (use more --tenants for real-time pacing)` : ""),
  );

  const started = Date.now();
  const deadline = options.duration ? started + options.duration * 1000 : Infinity;
  const gen = new TrafficGenerator(tenants, { rate: options.rate, seed: options.seed, runId: `sim${started.toString(36)}${randomBytes(2).toString("hex")}`, startAt: started, speed });
  const tally = new Tally();
  let nextReport = started + REPORT_EVERY_MS;
  let lastSent = 0;
  let lastReportAt = started;
  const report = (now: number) => {
    const s = gen.stats(now);
    const perSecond = ((tally.sent - lastSent) * 1000) / Math.max(1, now - lastReportAt);
    out(
      `${String(Math.round((now - started) / 1000)).padStart(5)} s  sent ${tally.sent}  accepted ${tally.accepted}  rejected ${tally.rejected}` +
        (tally.failed ? `  failed ${tally.failed}` : "") +
        `  voicemail ${tally.voicemails}` +
        `  | ${perSecond.toFixed(1)} events/s | ${s.activeLegs} call legs, ${s.waitingInQueues} waiting in queues, ${s.registeredDevices} devices registered`,
    );
    lastSent = tally.sent;
    lastReportAt = now;
  };

  while (!stopping && Date.now() < deadline) {
    const tickAt = Date.now();
    await send(api, gen.tick(tickAt), tally);
    const now = Date.now();
    if (now >= nextReport) {
      report(now);
      nextReport += REPORT_EVERY_MS * Math.max(1, Math.ceil((now - nextReport) / REPORT_EVERY_MS));
    }
    const wait = Math.min(TICK_MS - (now - tickAt), deadline - now);
    if (wait > 0 && !stopping) await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, wait)));
  }

  await send(api, gen.finish(Date.now()), tally);
  const seconds = (Date.now() - started) / 1000;
  out(
    `Stopped after ${seconds.toFixed(1)} s: sent ${tally.sent} events (${(tally.sent / Math.max(seconds, 0.001)).toFixed(1)}/s); ` +
      `accepted ${tally.accepted} (${tally.outcomes.applied} applied, ${tally.outcomes.duplicate} duplicate, ${tally.outcomes.ignored} ignored), ` +
      `rejected ${tally.rejected}, failed ${tally.failed}; ${tally.voicemails} voicemail messages left.`,
  );
  const reasons = [...tally.reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
  if (reasons.length) out(`Refusals and failures, most frequent first:\n${reasons.map(([reason, n]) => `  ${String(n).padStart(7)}  ${reason}`).join("\n")}`);
  return tally.sent > 0 && tally.accepted === 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`simulate: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
