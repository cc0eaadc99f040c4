import { Field, ID, Int, ObjectType, registerEnumType } from "type-graphql";
import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn, type Relation, Unique } from "typeorm";
import type { Tenant } from "../tenant/tenant.entity";

export enum CallDirection {
  INBOUND = "inbound",
  OUTBOUND = "outbound",
  INTERNAL = "internal",
}
registerEnumType(CallDirection, { name: "CallDirection" });

export enum CallDisposition {
  ANSWERED = "answered",
  NO_ANSWER = "no_answer",
  BUSY = "busy",
  FAILED = "failed",
  VOICEMAIL = "voicemail",
}
registerEnumType(CallDisposition, { name: "CallDisposition" });

/**
 * One finished call leg of an extension. Append-only, partitioned by month on startedAt (see the
 * CallRecords migration; TypeORM does not know partitioning, but the columns, keys and indexes it
 * compares are the same). extensionId and queueId are plain references without foreign keys: the
 * record outlives both, and reads resolve a deleted one to null.
 */
@ObjectType({ simpleResolvers: true, description: "A call detail record: one finished call leg involving an extension. It outlives the extension." })
@Entity({ name: "cdr" })
@Unique("uq_cdr__tenant_id__call_id__extension_number__started_at", ["tenantId", "callId", "extensionNumber", "startedAt"])
@Index("ix_cdr__tenant_id__started_at__id", ["tenantId", "startedAt", "id"])
@Index("ix_cdr__tenant_id__started_at__stats", ["tenantId", "startedAt", "disposition", "durationSeconds"])
@Index("ix_cdr__extension_id__started_at__id", ["extensionId", "startedAt", "id"])
@Index("ix_cdr__tenant_id__disposition__started_at__id", ["tenantId", "disposition", "startedAt", "id"])
@Index("ix_cdr__tenant_id__direction__started_at__id", ["tenantId", "direction", "startedAt", "id"])
@Index("ix_cdr__tenant_id__caller_number__started_at__id", ["tenantId", "callerNumber", "startedAt", "id"])
@Index("ix_cdr__tenant_id__callee_number__started_at__id", ["tenantId", "calleeNumber", "startedAt", "id"])
@Index("ix_cdr__tenant_id__trunk_id__started_at__id", ["tenantId", "trunkId", "startedAt", "id"])
@Index("ix_cdr__tenant_id__phone_number__started_at__id", ["tenantId", "phoneNumber", "startedAt", "id"])
@Check("ck_cdr__direction", `"direction" IN ('inbound', 'outbound', 'internal')`)
@Check("ck_cdr__disposition", `"disposition" IN ('answered', 'no_answer', 'busy', 'failed', 'voicemail')`)
@Check("ck_cdr__seconds", `"duration_seconds" >= 0 AND "billable_seconds" >= 0 AND "billable_seconds" <= "duration_seconds"`)
@Check("ck_cdr__ended_at", `"ended_at" >= "started_at"`)
export class Cdr {
  /** bigint: node-postgres returns it as a string, which is what an ID is anyway. */
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { type: "bigint", generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_cdr" })
  id!: string;

  @Field(() => ID)
  @Column({ type: "integer" })
  tenantId!: number;

  @ManyToOne("Tenant", { onDelete: "CASCADE" })
  @JoinColumn({ name: "tenant_id", foreignKeyConstraintName: "fk_cdr__tenant_id" })
  tenantRow?: Relation<Tenant>;

  @Field({ description: "The SIP engine's id of this leg." })
  @Column({ type: "varchar", length: 255 })
  callId!: string;

  @Field(() => String, { nullable: true, description: "The id shared by every leg of one call." })
  @Column({ type: "varchar", length: 255, nullable: true })
  linkedId!: string | null;

  /** The extension this leg belonged to; it may since have been deleted. */
  @Column({ type: "integer", nullable: true })
  extensionId!: number | null;

  @Field({ description: "The extension's number at the time of the call; kept after the extension is deleted." })
  @Column({ type: "varchar", length: 20 })
  extensionNumber!: string;

  @Field(() => CallDirection)
  @Column({ type: "varchar", length: 16 })
  direction!: CallDirection;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 64, nullable: true })
  callerNumber!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 255, nullable: true })
  callerName!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 64, nullable: true })
  calleeNumber!: string | null;

  @Column({ type: "integer", nullable: true })
  trunkId!: number | null;

  @Field(() => String, { nullable: true, description: "The tenant's number involved in a call with a carrier: the DID dialled, or the caller ID sent." })
  @Column({ type: "varchar", length: 16, nullable: true })
  phoneNumber!: string | null;

  @Field(() => String, { nullable: true, description: "The other party of a call with a carrier (E.164)." })
  @Column({ type: "varchar", length: 64, nullable: true })
  externalNumber!: string | null;

  @Column({ type: "integer", nullable: true })
  queueId!: number | null;

  @Field()
  @PrimaryColumn({ type: "timestamptz", primaryKeyConstraintName: "pk_cdr" })
  startedAt!: Date;

  @Field(() => Date, { nullable: true })
  @Column({ type: "timestamptz", nullable: true })
  answeredAt!: Date | null;

  @Field()
  @Column({ type: "timestamptz" })
  endedAt!: Date;

  @Field(() => Int)
  @Column({ type: "integer" })
  durationSeconds!: number;

  @Field(() => Int, { description: "Seconds from answer to end; 0 when never answered." })
  @Column({ type: "integer" })
  billableSeconds!: number;

  @Field(() => CallDisposition)
  @Column({ type: "varchar", length: 16 })
  disposition!: CallDisposition;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 64, nullable: true })
  hangupCause!: string | null;

  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;
}
