import { Field, ID, ObjectType, registerEnumType } from "type-graphql";
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

export enum Transport {
  UDP = "udp",
  TCP = "tcp",
  TLS = "tls",
  WS = "ws",
  WSS = "wss",
}
registerEnumType(Transport, { name: "Transport" });

/**
 * One registered SIP user agent of an extension, keyed by (extension, contact URI). Rows are
 * written by registrations (refresh updates, unregister stamps unregisteredAt); they go with the
 * extension.
 */
@ObjectType({ simpleResolvers: true, description: "A SIP user agent (phone, softphone, WebRTC client) registered for an extension." })
@Entity({ name: "device" })
@Unique("uq_device__extension_id__contact_uri", ["extensionId", "contactUri"])
@Index("ix_device__tenant_id", ["tenantId"])
@Index("ix_device__expires_at", ["expiresAt"], { where: `"unregistered_at" IS NULL` })
@Check("ck_device__transport", `"transport" IN ('udp', 'tcp', 'tls', 'ws', 'wss')`)
export class Device {
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_device" })
  id!: number;

  @Field(() => ID)
  @Column({ type: "integer" })
  tenantId!: number;

  @Field(() => ID)
  @Column({ type: "integer" })
  extensionId!: number;

  @ManyToOne("Extension", { onDelete: "CASCADE" })
  @JoinColumn([
    { name: "extension_id", referencedColumnName: "id", foreignKeyConstraintName: "fk_device__extension" },
    { name: "tenant_id", referencedColumnName: "tenantId" },
  ])
  extensionRow?: Relation<Extension>;

  @Field({ description: "The Contact URI the user agent registered." })
  @Column({ type: "varchar", length: 512 })
  contactUri!: string;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 255, nullable: true })
  userAgent!: string | null;

  @Field(() => String, { nullable: true, description: "Where the registration came from (address:port)." })
  @Column({ type: "varchar", length: 64, nullable: true })
  sourceAddress!: string | null;

  @Field(() => Transport, { nullable: true })
  @Column({ type: "varchar", length: 3, nullable: true })
  transport!: Transport | null;

  /** Not a column: computed by reads (not unregistered and not past expiresAt, by the database clock). */
  @Field({ description: "Registered now: neither unregistered nor past its expiry." })
  registered?: boolean;

  @Field(() => Date, { nullable: true, description: "When the current (or last) registration began." })
  @Column({ type: "timestamptz" })
  registeredAt!: Date;

  @Field(() => Date, { nullable: true, description: "When the registration lapses unless refreshed." })
  @Column({ type: "timestamptz" })
  expiresAt!: Date;

  @Field(() => Date, { nullable: true, description: "When the user agent unregistered; null while it has not." })
  @Column({ type: "timestamptz", nullable: true })
  unregisteredAt!: Date | null;

  @Field()
  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @Field()
  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
