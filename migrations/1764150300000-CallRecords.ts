import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Call detail records and the call legs in progress.
 *
 * `cdr` is append-only and partitioned by month on started_at, so old months leave by DROP TABLE
 * (retention) and every query with a date range reads only its months. There is deliberately no
 * DEFAULT partition: rows in it would block creating the partition for their month later. Months
 * are created ahead by pbx_ensure_cdr_partitions (the server runs it at start and daily).
 *
 * extension_id and queue_id carry no foreign key: a CDR is history and outlives both. Deleting an
 * extension therefore costs the same however many CDRs it has, never rewrites a CDR, and cannot
 * make a concurrent CDR write fail. Ids are identities that are never reused, so a stale id can only
 * ever mean "that extension, now deleted": reads resolve it to null (Cdr.extension) while
 * extension_number keeps the number it had.
 */
export class CallRecords1764150300000 implements MigrationInterface {
  name = "CallRecords1764150300000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "cdr" (
        "id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "call_id" varchar(255) NOT NULL,
        "linked_id" varchar(255),
        "extension_id" integer,
        "extension_number" varchar(20) NOT NULL,
        "direction" varchar(16) NOT NULL,
        "caller_number" varchar(64),
        "caller_name" varchar(255),
        "callee_number" varchar(64),
        "queue_id" integer,
        "started_at" timestamptz NOT NULL,
        "answered_at" timestamptz,
        "ended_at" timestamptz NOT NULL,
        "duration_seconds" integer NOT NULL,
        "billable_seconds" integer NOT NULL,
        "disposition" varchar(16) NOT NULL,
        "hangup_cause" varchar(64),
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_cdr" PRIMARY KEY ("id", "started_at"),
        CONSTRAINT "uq_cdr__tenant_id__call_id__extension_number__started_at" UNIQUE ("tenant_id", "call_id", "extension_number", "started_at"),
        CONSTRAINT "ck_cdr__direction" CHECK ("direction" IN ('inbound', 'outbound', 'internal')),
        CONSTRAINT "ck_cdr__disposition" CHECK ("disposition" IN ('answered', 'no_answer', 'busy', 'failed', 'voicemail')),
        CONSTRAINT "ck_cdr__seconds" CHECK ("duration_seconds" >= 0 AND "billable_seconds" >= 0 AND "billable_seconds" <= "duration_seconds"),
        CONSTRAINT "ck_cdr__ended_at" CHECK ("ended_at" >= "started_at"),
        CONSTRAINT "fk_cdr__tenant_id" FOREIGN KEY ("tenant_id") REFERENCES "tenant" ("id") ON DELETE CASCADE
      ) PARTITION BY RANGE ("started_at")`);
    // Newest first per tenant and per extension (keyset on started_at, id), the same by disposition
    // and by direction, and look-ups by either party's number.
    await q.query(`CREATE INDEX "ix_cdr__tenant_id__started_at__id" ON "cdr" ("tenant_id", "started_at" DESC, "id" DESC)`);
    await q.query(`CREATE INDEX "ix_cdr__extension_id__started_at__id" ON "cdr" ("extension_id", "started_at" DESC, "id" DESC)`);
    await q.query(
      `CREATE INDEX "ix_cdr__tenant_id__disposition__started_at__id" ON "cdr" ("tenant_id", "disposition", "started_at" DESC, "id" DESC)`,
    );
    await q.query(
      `CREATE INDEX "ix_cdr__tenant_id__direction__started_at__id" ON "cdr" ("tenant_id", "direction", "started_at" DESC, "id" DESC)`,
    );
    await q.query(
      `CREATE INDEX "ix_cdr__tenant_id__caller_number__started_at__id" ON "cdr" ("tenant_id", "caller_number", "started_at" DESC, "id" DESC)`,
    );
    await q.query(
      `CREATE INDEX "ix_cdr__tenant_id__callee_number__started_at__id" ON "cdr" ("tenant_id", "callee_number", "started_at" DESC, "id" DESC)`,
    );

    // Month partitions [first of month 00:00 UTC, next first of month), named cdr_pYYYYMM. Bounds are
    // written in ISO form with an explicit UTC offset, so sessions of any TimeZone or DateStyle agree
    // on them. The advisory lock serializes instances that start together.
    await q.query(`
      CREATE FUNCTION pbx_ensure_cdr_partitions(p_from date, p_to date) RETURNS integer
      LANGUAGE plpgsql AS $$
      DECLARE
        month_start date := date_trunc('month', p_from::timestamp)::date;
        created integer := 0;
        partition_name text;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('pbx_ensure_cdr_partitions'));
        WHILE month_start <= p_to LOOP
          partition_name := 'cdr_p' || to_char(month_start, 'YYYYMM');
          IF to_regclass(quote_ident(partition_name)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF cdr FOR VALUES FROM (%L) TO (%L)',
              partition_name,
              to_char(month_start, 'YYYY-MM-DD') || ' 00:00:00+00',
              to_char(month_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
            created := created + 1;
          END IF;
          month_start := (month_start + interval '1 month')::date;
        END LOOP;
        RETURN created;
      END
      $$`);
    await q.query(`SELECT pbx_ensure_cdr_partitions((now() - interval '3 months')::date, (now() + interval '3 months')::date)`);

    await q.query(`
      CREATE TABLE "active_call" (
        "id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "extension_id" integer NOT NULL,
        "call_id" varchar(255) NOT NULL,
        "linked_id" varchar(255),
        "direction" varchar(16) NOT NULL,
        "caller_number" varchar(64),
        "caller_name" varchar(255),
        "callee_number" varchar(64),
        "state" varchar(16) NOT NULL DEFAULT 'ringing',
        "queue_id" integer,
        "started_at" timestamptz NOT NULL,
        "answered_at" timestamptz,
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_active_call" PRIMARY KEY ("id"),
        CONSTRAINT "uq_active_call__tenant_id__call_id__extension_id" UNIQUE ("tenant_id", "call_id", "extension_id"),
        CONSTRAINT "ck_active_call__direction" CHECK ("direction" IN ('inbound', 'outbound', 'internal')),
        CONSTRAINT "ck_active_call__state" CHECK ("state" IN ('ringing', 'answered', 'held')),
        CONSTRAINT "fk_active_call__extension" FOREIGN KEY ("extension_id", "tenant_id") REFERENCES "extension" ("id", "tenant_id") ON DELETE CASCADE,
        CONSTRAINT "fk_active_call__queue_id" FOREIGN KEY ("queue_id") REFERENCES "queue" ("id") ON DELETE SET NULL
      )`);
    await q.query(`CREATE INDEX "ix_active_call__extension_id" ON "active_call" ("extension_id")`);
    await q.query(`CREATE INDEX "ix_active_call__queue_id" ON "active_call" ("queue_id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "active_call"`);
    await q.query(`DROP FUNCTION pbx_ensure_cdr_partitions(date, date)`);
    // Dropping the partitioned table drops every partition with it.
    await q.query(`DROP TABLE "cdr"`);
  }
}
