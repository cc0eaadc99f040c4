import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn, type Relation, Unique, UpdateDateColumn } from "typeorm";
import type { Queue } from "./queue.entity";

/**
 * One caller's passage through a queue, as the engine's queue events report it (see the QueueCalls
 * migration): keyed by (queue, call_id), so join / answer / abandon may repeat or arrive in any
 * order. Working state for the queue figures, not exposed in the graph; CDRs are the history.
 */
@Entity({ name: "queue_call" })
@Unique("uq_queue_call__queue_id__call_id", ["queueId", "callId"])
@Index("ix_queue_call__queue_id__joined_at", ["queueId", "joinedAt"], { where: `"answered_at" IS NULL AND "abandoned_at" IS NULL` })
@Index("ix_queue_call__queue_id__answered_at", ["queueId", "answeredAt"], { where: `"answered_at" IS NOT NULL` })
@Index("ix_queue_call__queue_id__abandoned_at", ["queueId", "abandonedAt"], { where: `"abandoned_at" IS NOT NULL` })
@Check("ck_queue_call__outcome", `"answered_at" IS NULL OR "abandoned_at" IS NULL`)
@Check("ck_queue_call__answered_by", `("answered_at" IS NULL) = ("agent_extension_id" IS NULL)`)
@Check("ck_queue_call__seen", `"joined_at" IS NOT NULL OR "answered_at" IS NOT NULL OR "abandoned_at" IS NOT NULL`)
export class QueueCall {
  @PrimaryGeneratedColumn("identity", { type: "bigint", generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_queue_call" })
  id!: string;

  @Column({ type: "integer" })
  tenantId!: number;

  @Column({ type: "integer" })
  queueId!: number;

  @ManyToOne("Queue", { onDelete: "CASCADE" })
  @JoinColumn([
    { name: "queue_id", referencedColumnName: "id", foreignKeyConstraintName: "fk_queue_call__queue" },
    { name: "tenant_id", referencedColumnName: "tenantId" },
  ])
  queueRow?: Relation<Queue>;

  @Column({ type: "varchar", length: 255 })
  callId!: string;

  @Column({ type: "timestamptz", nullable: true })
  joinedAt!: Date | null;

  @Column({ type: "timestamptz", nullable: true })
  answeredAt!: Date | null;

  @Column({ type: "timestamptz", nullable: true })
  abandonedAt!: Date | null;

  @Column({ type: "integer", nullable: true })
  agentExtensionId!: number | null;

  /** From the `join` event, when the engine gave them: who is waiting. */
  @Column({ type: "varchar", length: 64, nullable: true })
  callerNumber!: string | null;

  @Column({ type: "varchar", length: 255, nullable: true })
  callerName!: string | null;

  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
