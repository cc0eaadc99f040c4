import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Contract §12 storage: one dial plan per tenant, an extension's call handling, ring groups.
 *
 * - `dial_plan_number` holds every dialable number of a tenant (extension, queue, ring group) under
 *   one primary key. Row triggers on the owning tables claim and release numbers in the same
 *   statement as the write, so every path (GraphQL, REST, import, anything later) is covered and
 *   two concurrent claims of one number cannot both commit: the second waits on the first's
 *   uncommitted key, then fails with SQLSTATE PB409 whose message names the holder. A number taken
 *   by the same kind of owner is still refused first by that table's own unique key (unchanged
 *   messages); the trigger runs AFTER the row is written.
 * - `call_handling` (one row per extension, its id the extension's; absent = defaults) and `ring_group` /
 *   `ring_group_member`. Destinations are two columns, `<name>_type` and `<name>_target`.
 *
 * Numbers two owners already share before this migration (possible until now across queues and
 * extensions) keep working: the extension keeps the number in the plan, the queue is left out of
 * it until it is renumbered.
 */
const DESTINATION_TYPES = `('extension', 'ring_group', 'queue', 'voicemail', 'external', 'hangup')`;
/** A destination pair: a known type, and a target exactly when the type takes one (none, or both null). */
const destination = (name: string) =>
  `"${name}_type" IN ${DESTINATION_TYPES} AND (("${name}_type" = 'hangup') = ("${name}_target" IS NULL))`;

export class CallHandling1765300000000 implements MigrationInterface {
  name = "CallHandling1765300000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "dial_plan_number" (
        "tenant_id" integer NOT NULL,
        "number" varchar(20) NOT NULL,
        "owner_type" varchar(16) NOT NULL,
        "owner_id" integer NOT NULL,
        CONSTRAINT "pk_dial_plan_number" PRIMARY KEY ("tenant_id", "number"),
        CONSTRAINT "ck_dial_plan_number__owner_type" CHECK ("owner_type" IN ('extension', 'queue', 'ring_group')),
        CONSTRAINT "fk_dial_plan_number__tenant_id" FOREIGN KEY ("tenant_id") REFERENCES "tenant" ("id") ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE FUNCTION pbx_dial_plan_claim() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        v_type text := TG_ARGV[0];
        v_old text;
        v_new text;
        v_holder_type text;
        v_holder_id integer;
        v_holder text;
      BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN v_old := to_jsonb(OLD) ->> TG_ARGV[1]; END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN v_new := to_jsonb(NEW) ->> TG_ARGV[1]; END IF;
        IF TG_OP = 'UPDATE' AND v_old IS NOT DISTINCT FROM v_new THEN RETURN NULL; END IF;
        IF v_old IS NOT NULL THEN
          DELETE FROM dial_plan_number d
           WHERE d.tenant_id = OLD.tenant_id AND d.number = v_old AND d.owner_type = v_type AND d.owner_id = OLD.id;
        END IF;
        IF v_new IS NOT NULL THEN
          -- Waits for a concurrent claim of the same number to end; then either takes it or finds the holder.
          INSERT INTO dial_plan_number (tenant_id, number, owner_type, owner_id)
          VALUES (NEW.tenant_id, v_new, v_type, NEW.id)
          ON CONFLICT ON CONSTRAINT pk_dial_plan_number DO NOTHING;
          IF NOT FOUND THEN
            SELECT d.owner_type, d.owner_id INTO v_holder_type, v_holder_id
              FROM dial_plan_number d WHERE d.tenant_id = NEW.tenant_id AND d.number = v_new;
            IF v_holder_type = 'extension' THEN
              SELECT 'extension ' || e.extension_number || coalesce(' (' || e.display_name || ')', '') INTO v_holder FROM extension e WHERE e.id = v_holder_id;
            ELSIF v_holder_type = 'queue' THEN
              SELECT 'queue "' || x.name || '"' INTO v_holder FROM queue x WHERE x.id = v_holder_id;
            ELSE
              SELECT 'ring group "' || g.name || '"' INTO v_holder FROM ring_group g WHERE g.id = v_holder_id;
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'PB409',
              MESSAGE = format('The number %s is already used by %s.', v_new, coalesce(v_holder, replace(v_holder_type, '_', ' '))),
              DETAIL = coalesce(v_holder_type, '') || ':' || coalesce(v_holder_id::text, '');
          END IF;
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TABLE "call_handling" (
        "id" integer NOT NULL,
        "tenant_id" integer NOT NULL,
        "do_not_disturb" boolean NOT NULL DEFAULT false,
        "ring_seconds" integer NOT NULL DEFAULT 25,
        "forward_always_type" varchar(16),
        "forward_always_target" varchar(32),
        "forward_busy_type" varchar(16),
        "forward_busy_target" varchar(32),
        "forward_no_answer_type" varchar(16),
        "forward_no_answer_target" varchar(32),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_call_handling" PRIMARY KEY ("id"),
        CONSTRAINT "ck_call_handling__ring_seconds" CHECK ("ring_seconds" BETWEEN 5 AND 120),
        CONSTRAINT "ck_call_handling__forward_always_type" CHECK (${destination("forward_always")}),
        CONSTRAINT "ck_call_handling__forward_busy_type" CHECK (${destination("forward_busy")}),
        CONSTRAINT "ck_call_handling__forward_no_answer_type" CHECK (${destination("forward_no_answer")}),
        CONSTRAINT "fk_call_handling__extension" FOREIGN KEY ("id", "tenant_id") REFERENCES "extension" ("id", "tenant_id") ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX "ix_call_handling__tenant_id" ON "call_handling" ("tenant_id")`);
    await q.query(`
      CREATE TABLE "ring_group" (
        "id" integer GENERATED ALWAYS AS IDENTITY,
        "tenant_id" integer NOT NULL,
        "name" varchar(255) NOT NULL,
        "number" varchar(20) NOT NULL,
        "strategy" varchar(16) NOT NULL DEFAULT 'simultaneous',
        "ring_seconds" integer NOT NULL DEFAULT 20,
        "fallback_type" varchar(16) NOT NULL DEFAULT 'hangup',
        "fallback_target" varchar(32),
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_ring_group" PRIMARY KEY ("id"),
        CONSTRAINT "uq_ring_group__tenant_id__number" UNIQUE ("tenant_id", "number"),
        CONSTRAINT "uq_ring_group__id__tenant_id" UNIQUE ("id", "tenant_id"),
        CONSTRAINT "ck_ring_group__number" CHECK ("number" ~ '^[0-9]{1,20}$'),
        CONSTRAINT "ck_ring_group__strategy" CHECK ("strategy" IN ('simultaneous', 'sequential')),
        CONSTRAINT "ck_ring_group__ring_seconds" CHECK ("ring_seconds" BETWEEN 5 AND 120),
        CONSTRAINT "ck_ring_group__fallback_type" CHECK (${destination("fallback")}),
        CONSTRAINT "fk_ring_group__tenant_id" FOREIGN KEY ("tenant_id") REFERENCES "tenant" ("id") ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE "ring_group_member" (
        "id" integer GENERATED ALWAYS AS IDENTITY,
        "tenant_id" integer NOT NULL,
        "ring_group_id" integer NOT NULL,
        "extension_id" integer NOT NULL,
        "position" integer NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_ring_group_member" PRIMARY KEY ("id"),
        CONSTRAINT "uq_ring_group_member__ring_group_id__extension_id" UNIQUE ("ring_group_id", "extension_id"),
        CONSTRAINT "ck_ring_group_member__position" CHECK ("position" >= 0),
        CONSTRAINT "fk_ring_group_member__ring_group" FOREIGN KEY ("ring_group_id", "tenant_id") REFERENCES "ring_group" ("id", "tenant_id") ON DELETE CASCADE,
        -- Checked at commit, like queue_agent's: refuses deleting a member extension on its own, lets a tenant's cascade finish.
        CONSTRAINT "fk_ring_group_member__extension" FOREIGN KEY ("extension_id", "tenant_id") REFERENCES "extension" ("id", "tenant_id")
          ON DELETE NO ACTION DEFERRABLE INITIALLY DEFERRED
      )`);
    await q.query(`CREATE INDEX "ix_ring_group_member__extension_id" ON "ring_group_member" ("extension_id")`);

    // The plan starts with what exists; extensions first (see above).
    await q.query(`INSERT INTO dial_plan_number (tenant_id, number, owner_type, owner_id) SELECT tenant_id, extension_number, 'extension', id FROM extension`);
    await q.query(`INSERT INTO dial_plan_number (tenant_id, number, owner_type, owner_id) SELECT tenant_id, number, 'queue', id FROM queue ON CONFLICT DO NOTHING`);
    for (const [table, column, type] of [["extension", "extension_number", "extension"], ["queue", "number", "queue"], ["ring_group", "number", "ring_group"]]) {
      await q.query(`
        CREATE TRIGGER "trg_${table}__dial_plan" AFTER INSERT OR DELETE OR UPDATE OF "${column}" ON "${table}"
          FOR EACH ROW EXECUTE FUNCTION pbx_dial_plan_claim('${type}', '${column}')`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER "trg_ring_group__dial_plan" ON "ring_group"`);
    await q.query(`DROP TRIGGER "trg_queue__dial_plan" ON "queue"`);
    await q.query(`DROP TRIGGER "trg_extension__dial_plan" ON "extension"`);
    await q.query(`DROP TABLE "ring_group_member"`);
    await q.query(`DROP TABLE "ring_group"`);
    await q.query(`DROP TABLE "call_handling"`);
    await q.query(`DROP FUNCTION pbx_dial_plan_claim()`);
    await q.query(`DROP TABLE "dial_plan_number"`);
  }
}
