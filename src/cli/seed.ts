import "reflect-metadata";
import { Role } from "../auth/role";
import { createLogger } from "../common/logger";
import { SecretBox } from "../common/secret-box";
import { ConfigError, loadConfig, type AppConfig } from "../config/config";
import { loadEncryptionKey } from "../config/encryption-key";
import { buildContext } from "../context/build-context";
import { openDatabase, type Database } from "../db/data-source";
import { StartupError } from "../common/startup-error";
import { cliArgs } from "./args";
import { InProcessPubSub } from "../events/pubsub";
import { generateKey, hashKey } from "../modules/api-key/api-key.service";
import { PARTITION_MONTHS_AHEAD } from "../modules/cdr/cdr-partitions";
import { CreateExtensionInput } from "../modules/extension/extension.inputs";
import { createServices } from "../services";

/**
 * `npm run seed -- --tenants N --extensions N --cdrs N [--days 90] [--queues 4]`: fills a database
 * (DATABASE_URL, or the embedded one in DATA_DIR) with demo and benchmark data in a handful of
 * set-based statements. Every run adds new tenants (a run tag keeps slugs and domains unique).
 */

interface SeedOptions {
  tenants: number;
  /** Per tenant. */
  extensions: number;
  /** In total, spread evenly over every extension. */
  cdrs: number;
  days: number;
  /** Per tenant. */
  queues: number;
}

const LIMITS: Record<keyof SeedOptions, [number, number, number]> = {
  // name: [default, min, max]
  tenants: [10, 1, 100_000],
  extensions: [50, 1, 100_000],
  cdrs: [100_000, 0, 1_000_000_000],
  days: [90, 1, 3650],
  queues: [4, 0, 1000],
};

/** One statement writes at most this many CDRs, so memory stays flat and progress shows. */
const CDR_CHUNK = 100_000;
const SECRET = "seed-secret-0000";

const USAGE = `usage: npm run seed -- [--tenants 10] [--extensions 50] [--cdrs 100000] [--days 90] [--queues 4]

Writes demo data (tenants, extensions, devices, queues, agents, live calls and CDRs) into
DATABASE_URL, or the embedded database in DATA_DIR (no server may be using it meanwhile), and prints
an ADMIN key. Reads .env like npm start.
`;

function parseSeedArgs(argv: string[]): SeedOptions {
  const values = cliArgs(USAGE, Object.fromEntries(Object.keys(LIMITS).map((name) => [name, { type: "string" as const }])), argv) as Record<string, string | undefined>;
  const options = Object.fromEntries(Object.entries(LIMITS).map(([name, [fallback]]) => [name, fallback])) as unknown as SeedOptions;
  for (const name of Object.keys(LIMITS) as Array<keyof SeedOptions>) {
    const raw = values[name];
    if (raw === undefined) continue;
    const [, min, max] = LIMITS[name];
    const value = Number(raw?.replace(/_/g, ""));
    if (!Number.isInteger(value) || value < min || value > max) throw new ConfigError(`--${name} must be an integer between ${min} and ${max}`);
    options[name] = value;
  }
  return options;
}

function timer() {
  const started = process.hrtime.bigint();
  let last = started;
  const seconds = (from: bigint) => (Number(process.hrtime.bigint() - from) / 1e9).toFixed(2).padStart(7);
  return {
    step(label: string, detail = "") {
      process.stdout.write(`${seconds(last)} s  ${label}${detail ? `  (${detail})` : ""}\n`);
      last = process.hrtime.bigint();
    },
    total: () => seconds(started).trim(),
  };
}

async function seed(db: Database, config: AppConfig, options: SeedOptions, secretBox: SecretBox): Promise<void> {
  const ds = db.dataSource;
  const t = timer();
  const tag = Date.now().toString(36);
  const log = createLogger("silent");

  await ds.runMigrations({ transaction: "each" });
  t.step("migrations");

  const tenantRows: Array<{ id: number }> = await ds.query(
    `INSERT INTO tenant (name, slug, sip_domain, max_extensions)
     SELECT 'Seed ' || $1 || ' tenant ' || g, 'seed-' || $1 || '-' || g, 'seed-' || $1 || '-' || g || '.pbx.test', $2
       FROM generate_series(1, $3::int) AS g
     RETURNING id`,
    [tag, options.extensions, options.tenants],
  );
  const tenantIds = tenantRows.map((r) => r.id);
  t.step("tenants", `${tenantIds.length}`);

  // The first extension of each tenant goes through the real service, so its SIP secret is sealed by
  // the real SecretBox under that tenant's associated data; the tenant's other extensions reuse
  // that sealed value (the same secret), which keeps the bulk insert a single statement.
  const services = createServices({ dataSource: ds, config, secretBox, log, pubsub: null });
  const ctx = buildContext({ dataSource: ds, services, log, pubsub: new InProcessPubSub() }, { role: Role.ADMIN, tenantId: null, apiKeyId: null, name: "seed" }, "cli");
  const parallel = db.engine === "postgres" ? 8 : 1;
  for (let i = 0; i < tenantIds.length; i += parallel) {
    await Promise.all(
      tenantIds.slice(i, i + parallel).map((tenantId) =>
        services.extensions.create(ctx, Object.assign(new CreateExtensionInput(), { tenantId, extensionNumber: "1000", displayName: "Extension 1000", secret: SECRET })),
      ),
    );
  }
  const [{ count: extensions }] = await ds.query(
    `WITH first AS (SELECT tenant_id, secret_ciphertext FROM extension WHERE tenant_id = ANY($1::int[]))
     , inserted AS (
       INSERT INTO extension (tenant_id, extension_number, display_name, email, secret_ciphertext, status, voicemail_enabled)
       SELECT f.tenant_id, (1000 + n)::text, 'Extension ' || (1000 + n), 'ext' || (1000 + n) || '@seed-' || f.tenant_id || '.pbx.test',
              f.secret_ciphertext, CASE WHEN n % 50 = 49 THEN 'disabled' ELSE 'active' END, n % 4 = 0
         FROM first f CROSS JOIN generate_series(1, $2::int - 1) AS n
       RETURNING 1)
     SELECT (count(*) + cardinality($1::int[]))::int AS count FROM inserted`,
    [tenantIds, options.extensions],
  );
  t.step("extensions", `${extensions}, secrets sealed once per tenant`);
  // The bulk-inserted copies got no SIP digests (their numbers differ): the start-up backfill's code fills them.
  const digests = await services.credentials.backfill(ds, log);
  t.step("SIP digests", `${digests}`);

  const [{ count: devices }] = await ds.query(
    `WITH inserted AS (
       INSERT INTO device (tenant_id, extension_id, contact_uri, user_agent, source_address, transport, registered_at, expires_at)
       SELECT e.tenant_id, e.id, 'sip:' || e.extension_number || '@10.' || (e.id / 65536 % 256) || '.' || (e.id / 256 % 256) || '.' || (e.id % 256) || ':' || (5060 + n),
              CASE n WHEN 1 THEN 'Yealink SIP-T54W 96.86.0.70' ELSE 'Linphone/5.2 (softphone)' END,
              '198.51.100.' || (e.id % 250 + 1) || ':' || (5060 + n), CASE n WHEN 1 THEN 'udp' ELSE 'wss' END,
              now() - interval '10 minutes', CASE n WHEN 1 THEN now() + interval '1 hour' ELSE now() - interval '1 day' END
         FROM extension e CROSS JOIN generate_series(1, 2) AS n
        WHERE e.tenant_id = ANY($1::int[]) AND (n = 1 OR e.id % 3 = 0)
       RETURNING 1)
     SELECT count(*)::int AS count FROM inserted`,
    [tenantIds],
  );
  t.step("devices", `${devices}: one registered per extension, an expired softphone on every third`);

  const [{ count: queues }] = await ds.query(
    `WITH inserted AS (
       INSERT INTO queue (tenant_id, name, number, strategy)
       SELECT t.id, (ARRAY['Sales', 'Support', 'Billing', 'Front desk'])[1 + (q - 1) % 4] || CASE WHEN q > 4 THEN ' ' || q ELSE '' END,
              (8000 + q)::text, (ARRAY['ring_all', 'round_robin', 'least_recent', 'fewest_calls', 'random', 'linear'])[1 + (q - 1) % 6]
         FROM unnest($1::int[]) AS t(id) CROSS JOIN generate_series(1, $2::int) AS q
       RETURNING 1)
     SELECT count(*)::int AS count FROM inserted`,
    [tenantIds, options.queues],
  );
  // Every extension is an agent of one queue, every fourth of a second one too.
  const [{ count: agents }] = await ds.query(
    `WITH qs AS (SELECT tenant_id, array_agg(id ORDER BY id) AS ids FROM queue WHERE tenant_id = ANY($1::int[]) GROUP BY tenant_id)
     , ext AS (SELECT e.id, e.tenant_id, row_number() OVER (PARTITION BY e.tenant_id ORDER BY e.id) AS rn FROM extension e WHERE e.tenant_id = ANY($1::int[]))
     , inserted AS (
       INSERT INTO queue_agent (tenant_id, queue_id, extension_id, penalty, paused)
       SELECT ext.tenant_id, qs.ids[1 + ((ext.rn + k) % cardinality(qs.ids))::int], ext.id, k, ext.rn % 10 = 0
         FROM ext JOIN qs ON qs.tenant_id = ext.tenant_id CROSS JOIN generate_series(0, 1) AS k
        WHERE (k = 0 OR ext.rn % 4 = 0) AND cardinality(qs.ids) > k
       RETURNING 1)
     SELECT count(*)::int AS count FROM inserted`,
    [tenantIds],
  );
  t.step("queues and agents", `${queues} queues, ${agents} agents`);

  const [{ count: activeCalls }] = await ds.query(
    `WITH inserted AS (
       INSERT INTO active_call (tenant_id, extension_id, call_id, linked_id, direction, caller_number, caller_name, callee_number, state, started_at, answered_at)
       SELECT e.tenant_id, e.id, 'seed-live-' || e.id, 'seed-live-' || e.id, 'inbound', '+1555' || lpad((e.id * 7919 % 10000000)::text, 7, '0'),
              'Caller ' || e.id, e.extension_number, (ARRAY['ringing', 'answered', 'held'])[1 + e.id % 3],
              now() - make_interval(secs => e.id % 600), CASE WHEN e.id % 3 > 0 THEN now() - make_interval(secs => e.id % 300) END
         FROM extension e WHERE e.tenant_id = ANY($1::int[]) AND e.id % 25 = 0
       RETURNING 1)
     SELECT count(*)::int AS count FROM inserted`,
    [tenantIds],
  );
  t.step("active calls", `${activeCalls}`);

  await ds.query(`SELECT pbx_ensure_cdr_partitions((now() - make_interval(days => $1))::date, (now() + make_interval(months => $2))::date)`, [
    options.days,
    PARTITION_MONTHS_AHEAD,
  ]);
  t.step("cdr partitions", `${options.days} days back`);

  const chunks: Array<[number, number]> = [];
  for (let from = 1; from <= options.cdrs; from += CDR_CHUNK) chunks.push([from, Math.min(from + CDR_CHUNK - 1, options.cdrs)]);
  // Two writers saturate this kind of insert on a small server; the embedded engine has one connection.
  const writers = db.engine === "postgres" ? 2 : 1;
  let next = 0;
  let written = 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < chunks.length) {
        const [from, to] = chunks[next++];
        const count = await insertCdrs(db, tenantIds, tag, from, to, options.days);
        written += count;
      }
    }),
  );
  t.step("cdrs", `${written} over ${options.days} days, ${chunks.length} statements`);

  const key = generateKey();
  await ds.query(`INSERT INTO api_key (name, role, prefix, key_hash) VALUES ($1, 'ADMIN', $2, $3)`, [`seed ${tag} benchmark`, key.slice(0, 12), hashKey(key)]);
  await ds.query(`ANALYZE tenant, extension, device, queue, queue_agent, active_call, cdr`);
  t.step("admin key and ANALYZE");

  process.stdout.write(
    [
      "",
      `Seeded ${tenantIds.length} tenants (ids ${tenantIds[0]}–${tenantIds[tenantIds.length - 1]}), ${extensions} extensions, ${written} CDRs in ${t.total()} s.`,
      `Every seeded extension's SIP secret is "${SECRET}".`,
      `ADMIN API key for benchmarks (shown once): ${key}`,
      "",
    ].join("\n"),
  );
}

/**
 * CDRs g = from..to, spread round-robin over every seeded extension, at random instants of the last
 * `days` days, with a plausible mix of directions, outcomes, durations, numbers and queues.
 */
async function insertCdrs(db: Database, tenantIds: number[], tag: string, from: number, to: number, days: number): Promise<number> {
  const [{ count }] = await db.dataSource.query(
    `WITH ext AS (
       SELECT e.id, e.tenant_id, e.extension_number, (row_number() OVER (ORDER BY e.id) - 1)::int AS rn,
              (count(*) OVER (PARTITION BY e.tenant_id))::int AS per_tenant
         FROM extension e WHERE e.tenant_id = ANY($1::int[]))
     , n AS (SELECT count(*)::int AS total FROM ext)
     , qs AS (SELECT tenant_id, array_agg(id ORDER BY id) AS ids FROM queue WHERE tenant_id = ANY($1::int[]) GROUP BY tenant_id)
     , raw AS (
       SELECT g, ext.id AS extension_id, ext.tenant_id, ext.extension_number, ext.per_tenant, qs.ids AS queue_ids,
              date_trunc('second', now() - random() * make_interval(days => $5)) AS started_at,
              random() AS r_direction, random() AS r_outcome, random() AS r_ring, random() AS r_talk, random() AS r_number
         FROM generate_series($2::bigint, $3::bigint) AS g
         CROSS JOIN n
         JOIN ext ON ext.rn = (g % n.total)
         LEFT JOIN qs ON qs.tenant_id = ext.tenant_id)
     , leg AS (
       SELECT *,
              CASE WHEN r_direction < 0.45 THEN 'inbound' WHEN r_direction < 0.85 THEN 'outbound' ELSE 'internal' END AS direction,
              CASE WHEN r_outcome < 0.70 THEN 'answered' WHEN r_outcome < 0.85 THEN 'no_answer' WHEN r_outcome < 0.90 THEN 'busy'
                   WHEN r_outcome < 0.93 THEN 'failed' ELSE 'voicemail' END AS disposition,
              (2 + r_ring * 25)::int AS ring_seconds,
              (5 + r_talk * r_talk * 1200)::int AS talk_seconds,
              '+1555' || lpad((r_number * 10000000)::int::text, 7, '0') AS outside_number,
              (1000 + (r_number * per_tenant)::int % per_tenant)::text AS colleague_number
         FROM raw)
     , inserted AS (
       INSERT INTO cdr (tenant_id, call_id, linked_id, extension_id, extension_number, direction, caller_number, caller_name, callee_number,
                        queue_id, started_at, answered_at, ended_at, duration_seconds, billable_seconds, disposition, hangup_cause)
       SELECT tenant_id, 'seed-' || $4 || '-' || g, 'seed-' || $4 || '-' || g, extension_id, extension_number, direction,
              CASE direction WHEN 'inbound' THEN outside_number ELSE extension_number END,
              CASE direction WHEN 'inbound' THEN 'Caller ' || right(outside_number, 4) ELSE 'Extension ' || extension_number END,
              CASE direction WHEN 'inbound' THEN extension_number WHEN 'outbound' THEN outside_number ELSE colleague_number END,
              CASE WHEN direction = 'inbound' AND g % 3 = 0 AND cardinality(queue_ids) > 0 THEN queue_ids[1 + (g % cardinality(queue_ids))::int] END,
              started_at,
              CASE WHEN disposition = 'answered' THEN started_at + make_interval(secs => ring_seconds) END,
              started_at + make_interval(secs => ring_seconds + CASE WHEN disposition IN ('answered', 'voicemail') THEN talk_seconds ELSE 0 END),
              ring_seconds + CASE WHEN disposition IN ('answered', 'voicemail') THEN talk_seconds ELSE 0 END,
              CASE WHEN disposition = 'answered' THEN talk_seconds ELSE 0 END,
              disposition,
              CASE disposition WHEN 'answered' THEN 'NORMAL_CLEARING' WHEN 'no_answer' THEN 'NO_ANSWER' WHEN 'busy' THEN 'USER_BUSY'
                               WHEN 'failed' THEN 'CALL_REJECTED' ELSE 'NORMAL_CLEARING' END
         FROM leg
       RETURNING 1)
     SELECT count(*)::int AS count FROM inserted`,
    [tenantIds, from, to, tag, days],
  );
  return count;
}

async function main(): Promise<void> {
  let options: SeedOptions;
  let config;
  try {
    options = parseSeedArgs(process.argv.slice(2));
    // Bulk statements run for longer than a request may.
    config = loadConfig({ ...process.env, STATEMENT_TIMEOUT_MS: "3600000" });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`seed: ${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    throw error;
  }
  const encryption = loadEncryptionKey(config);
  if (encryption.source === "generated") process.stdout.write(`Generated SECRET_ENCRYPTION_KEY into ${encryption.file}; the server must use the same key.\n`);
  const db = await openDatabase(config);
  process.stdout.write(
    `Seeding ${db.engine === "postgres" ? "PostgreSQL (DATABASE_URL)" : `the embedded database in ${config.dataDir}`}: ` +
      `${options.tenants} tenants × ${options.extensions} extensions, ${options.queues} queues each, ${options.cdrs} CDRs over ${options.days} days\n`,
  );
  try {
    await seed(db, config, options, new SecretBox(encryption.key));
  } finally {
    await db.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`seed failed: ${error instanceof StartupError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
