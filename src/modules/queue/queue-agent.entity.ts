import { Field, ID, Int, ObjectType } from "type-graphql";
import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
  Unique,
  UpdateDateColumn,
} from "typeorm";
import type { Extension } from "../extension/extension.entity";
import type { Queue } from "./queue.entity";

/**
 * An extension enrolled in a queue. The composite foreign keys (queue_id, tenant_id) and
 * (extension_id, tenant_id) make an agent of another tenant impossible in the database itself.
 */
@ObjectType({ simpleResolvers: true, description: "An extension enrolled as an agent of a queue." })
@Entity({ name: "queue_agent" })
@Unique("uq_queue_agent__queue_id__extension_id", ["queueId", "extensionId"])
@Index("ix_queue_agent__extension_id", ["extensionId"])
@Index("ix_queue_agent__tenant_id", ["tenantId"])
@Check("ck_queue_agent__penalty", `"penalty" >= 0`)
export class QueueAgent {
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_queue_agent" })
  id!: number;

  @Field(() => ID)
  @Column({ type: "integer" })
  tenantId!: number;

  @Field(() => ID)
  @Column({ type: "integer" })
  queueId!: number;

  @Field(() => ID)
  @Column({ type: "integer" })
  extensionId!: number;

  @ManyToOne("Queue", { onDelete: "CASCADE" })
  @JoinColumn([
    { name: "queue_id", referencedColumnName: "id", foreignKeyConstraintName: "fk_queue_agent__queue" },
    { name: "tenant_id", referencedColumnName: "tenantId" },
  ])
  queueRow?: Relation<Queue>;

  // Checked at commit: a lone extension delete is still refused, but a tenant's cascade (which
  // reaches extensions before queues) may finish removing both (see the DeferQueueAgentExtensionFk migration).
  @ManyToOne("Extension", { onDelete: "NO ACTION", deferrable: "INITIALLY DEFERRED" })
  @JoinColumn([
    { name: "extension_id", referencedColumnName: "id", foreignKeyConstraintName: "fk_queue_agent__extension" },
    { name: "tenant_id", referencedColumnName: "tenantId" },
  ])
  extensionRow?: Relation<Extension>;

  @Field(() => Int, { description: "Higher penalty = offered calls later. At least 0." })
  @Column({ type: "integer", default: 0 })
  penalty!: number;

  @Field()
  @Column({ type: "boolean", default: false })
  paused!: boolean;

  @Field(() => Date, {
    nullable: true,
    description: "Since when the agent is paused; null while not paused (or when the pause began before this was recorded).",
  })
  @Column({ type: "timestamptz", nullable: true })
  pausedAt!: Date | null;

  /** When the last pause ended (internal: `availableSince` is what the graph shows). */
  @Column({ type: "timestamptz", nullable: true })
  unpausedAt!: Date | null;

  @Field()
  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @Field()
  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
