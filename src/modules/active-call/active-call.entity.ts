import { Field, ID, ObjectType, registerEnumType } from "type-graphql";
import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn, type Relation, Unique, UpdateDateColumn } from "typeorm";
import { CallDirection } from "../cdr/cdr.entity";
import type { Extension } from "../extension/extension.entity";
import type { Queue } from "../queue/queue.entity";

export enum CallState {
  RINGING = "ringing",
  ANSWERED = "answered",
  HELD = "held",
}
registerEnumType(CallState, { name: "CallState" });

/**
 * A call leg in progress: state, not history. The row goes when the leg ends (and becomes a CDR)
 * or with its extension; the composite foreign key keeps the extension inside the tenant.
 */
@ObjectType({ simpleResolvers: true, description: "A call leg in progress on an extension: RINGING → ANSWERED ⇄ HELD, until it ends and becomes a CDR." })
@Entity({ name: "active_call" })
@Unique("uq_active_call__tenant_id__call_id__extension_id", ["tenantId", "callId", "extensionId"])
@Index("ix_active_call__extension_id", ["extensionId"])
@Index("ix_active_call__queue_id", ["queueId"])
@Check("ck_active_call__direction", `"direction" IN ('inbound', 'outbound', 'internal')`)
@Check("ck_active_call__state", `"state" IN ('ringing', 'answered', 'held')`)
export class ActiveCall {
  /** bigint: legs come and go all day, so the identity outgrows an integer. */
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { type: "bigint", generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_active_call" })
  id!: string;

  @Field(() => ID)
  @Column({ type: "integer" })
  tenantId!: number;

  @Column({ type: "integer" })
  extensionId!: number;

  @ManyToOne("Extension", { onDelete: "CASCADE" })
  @JoinColumn([
    { name: "extension_id", referencedColumnName: "id", foreignKeyConstraintName: "fk_active_call__extension" },
    { name: "tenant_id", referencedColumnName: "tenantId" },
  ])
  extensionRow?: Relation<Extension>;

  @Field({ description: "The SIP engine's id of this leg." })
  @Column({ type: "varchar", length: 255 })
  callId!: string;

  @Field(() => String, { nullable: true, description: "The id shared by every leg of one call." })
  @Column({ type: "varchar", length: 255, nullable: true })
  linkedId!: string | null;

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

  @Field(() => CallState)
  @Column({ type: "varchar", length: 16, default: CallState.RINGING })
  state!: CallState;

  @Column({ type: "integer", nullable: true })
  queueId!: number | null;

  /**
   * A single-column key: a composite one could not SET NULL without nulling tenant_id too (TypeORM
   * cannot express PostgreSQL 15's column list). Reads check the queue's tenant instead.
   */
  @ManyToOne("Queue", { onDelete: "SET NULL" })
  @JoinColumn({ name: "queue_id", foreignKeyConstraintName: "fk_active_call__queue_id" })
  queueRow?: Relation<Queue>;

  @Field()
  @Column({ type: "timestamptz" })
  startedAt!: Date;

  @Field(() => Date, { nullable: true })
  @Column({ type: "timestamptz", nullable: true })
  answeredAt!: Date | null;

  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
