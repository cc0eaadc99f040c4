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
import { CallClass } from "../outbound-route/call-class";
import type { Tenant } from "../tenant/tenant.entity";

export enum ExtensionStatus {
  ACTIVE = "active",
  DISABLED = "disabled",
}
registerEnumType(ExtensionStatus, { name: "ExtensionStatus" });

@ObjectType({ simpleResolvers: true, description: "A SIP endpoint that users register against to make and take calls." })
@Entity({ name: "extension" })
@Unique("uq_extension__tenant_id__extension_number", ["tenantId", "extensionNumber"])
@Unique("uq_extension__id__tenant_id", ["id", "tenantId"])
@Index("ix_extension__tenant_id__id", ["tenantId", "id"])
@Check("ck_extension__extension_number", `"extension_number" ~ '^[0-9]{1,20}$'`)
@Check("ck_extension__status", `"status" IN ('active', 'disabled')`)
export class Extension {
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_extension" })
  id!: number;

  @Field(() => ID)
  @Column({ type: "integer" })
  tenantId!: number;

  @ManyToOne("Tenant", { onDelete: "CASCADE" })
  @JoinColumn({ name: "tenant_id", foreignKeyConstraintName: "fk_extension__tenant_id" })
  tenantRow?: Relation<Tenant>;

  @Field({ description: "The dialable number: digits only, 1 to 20, unique inside the tenant." })
  @Column({ type: "varchar", length: 20 })
  extensionNumber!: string;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 255, nullable: true })
  displayName!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 255, nullable: true })
  email!: string | null;

  /** AES-256-GCM envelope of the SIP secret; never leaves the service layer. */
  @Column({ type: "text", select: false })
  secretCiphertext!: string;

  /** SIP digests of the secret (contract §7), kept by ExtensionCredentials; as secret as the secret itself. */
  @Column({ type: "char", length: 32, nullable: true, select: false })
  ha1!: string | null;

  @Column({ type: "char", length: 32, nullable: true, select: false })
  ha1b!: string | null;

  @Column({ type: "char", length: 64, nullable: true, select: false })
  ha1Sha256!: string | null;

  @Field(() => ExtensionStatus)
  @Column({ type: "varchar", length: 16, default: ExtensionStatus.ACTIVE })
  status!: ExtensionStatus;

  @Field()
  @Column({ type: "boolean", default: false })
  voicemailEnabled!: boolean;

  /** Not a column: computed by reads (`secret_ciphertext IS NOT NULL`). */
  @Field(() => [CallClass], { description: "The outbound route classes it may call; EMERGENCY is always allowed to an active extension." })
  @Column({ type: "varchar", length: 16, array: true, default: () => "'{emergency,national,mobile}'" })
  allowedCallClasses!: CallClass[];

  @Field(() => String, { nullable: true, description: "One of the tenant's phone numbers, sent as the caller of its outbound calls (else the tenant's default)." })
  @Column({ type: "varchar", length: 16, nullable: true })
  callerIdNumber!: string | null;

  @Field({ description: "Whether a SIP secret is set. The secret itself is never returned." })
  hasSecret?: boolean;

  @Field()
  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @Field()
  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
