import { Field, ID, Int, ObjectType, registerEnumType } from "type-graphql";
import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
  Unique,
  UpdateDateColumn,
} from "typeorm";
import { destinationCheck } from "../call-destination/call-destination";
import type { Tenant } from "../tenant/tenant.entity";

export enum QueueStrategy {
  RING_ALL = "ring_all",
  ROUND_ROBIN = "round_robin",
  LEAST_RECENT = "least_recent",
  FEWEST_CALLS = "fewest_calls",
  RANDOM = "random",
  LINEAR = "linear",
}
registerEnumType(QueueStrategy, { name: "QueueStrategy" });

@ObjectType({ simpleResolvers: true, description: "A call queue of a tenant; its agents are extensions of the same tenant." })
@Entity({ name: "queue" })
@Unique("uq_queue__tenant_id__number", ["tenantId", "number"])
@Unique("uq_queue__id__tenant_id", ["id", "tenantId"])
@Check("ck_queue__number", `"number" ~ '^[0-9]{1,20}$'`)
@Check("ck_queue__strategy", `"strategy" IN ('ring_all', 'round_robin', 'least_recent', 'fewest_calls', 'random', 'linear')`)
@Check("ck_queue__service_level_seconds", `"service_level_seconds" >= 1 AND "service_level_seconds" <= 3600`)
@Check("ck_queue__agent_ring_seconds", `"agent_ring_seconds" >= 5 AND "agent_ring_seconds" <= 300`)
@Check("ck_queue__max_wait_seconds", `"max_wait_seconds" >= 5 AND "max_wait_seconds" <= 3600`)
@Check("ck_queue__timeout_destination", destinationCheck("timeout_destination"))
export class Queue {
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_queue" })
  id!: number;

  @Field(() => ID)
  @Column({ type: "integer" })
  tenantId!: number;

  @ManyToOne("Tenant", { onDelete: "CASCADE" })
  @JoinColumn({ name: "tenant_id", foreignKeyConstraintName: "fk_queue__tenant_id" })
  tenantRow?: Relation<Tenant>;

  @Field()
  @Column({ type: "varchar", length: 255 })
  name!: string;

  @Field({ description: "The dialable number of the queue, unique inside the tenant." })
  @Column({ type: "varchar", length: 20 })
  number!: string;

  @Field(() => QueueStrategy)
  @Column({ type: "varchar", length: 16, default: QueueStrategy.RING_ALL })
  strategy!: QueueStrategy;

  @Field(() => Int, { description: "The answer-time target of its service level: a call answered within this many seconds of joining meets it." })
  @Column({ type: "integer", default: 20 })
  serviceLevelSeconds!: number;

  @Field(() => Int, { description: "How long one offer rings an agent's phones, in seconds (5 to 300, default 15)." })
  @Column({ type: "integer", default: 15 })
  agentRingSeconds!: number;

  @Field(() => Int, { description: "How long a caller waits at most before going to timeoutDestination, in seconds (5 to 3600, default 300)." })
  @Column({ type: "integer", default: 300 })
  maxWaitSeconds!: number;

  /** timeoutDestination's pair (GraphQL shows it as one CallDestination, see QueueResolver). */
  @Column({ type: "varchar", length: 16, default: "hangup" })
  timeoutDestinationType!: string;

  @Column({ type: "varchar", length: 32, nullable: true })
  timeoutDestinationTarget!: string | null;

  @Field()
  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @Field()
  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
