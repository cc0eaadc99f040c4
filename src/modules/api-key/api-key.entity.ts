import { Field, ID, ObjectType } from "type-graphql";
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
} from "typeorm";
import type { Tenant } from "../tenant/tenant.entity";
import { Role } from "../../auth/role";

@ObjectType({ simpleResolvers: true, description: "An API key. The key itself is shown once, when it is created; only its hash is stored." })
@Entity({ name: "api_key" })
@Unique("uq_api_key__key_hash", ["keyHash"])
@Index("ix_api_key__tenant_id", ["tenantId"])
@Check("ck_api_key__role", `"role" IN ('ADMIN', 'TENANT_ADMIN', 'VIEWER', 'INGEST')`)
@Check(
  "ck_api_key__tenant_scope",
  `("role" = 'ADMIN' AND "tenant_id" IS NULL) OR ("role" IN ('TENANT_ADMIN', 'VIEWER') AND "tenant_id" IS NOT NULL) OR "role" = 'INGEST'`,
)
export class ApiKey {
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_api_key" })
  id!: number;

  @Field()
  @Column({ type: "varchar", length: 255 })
  name!: string;

  @Field(() => Role)
  @Column({ type: "varchar", length: 16 })
  role!: Role;

  @Field(() => ID, { nullable: true })
  @Column({ type: "integer", nullable: true })
  tenantId!: number | null;

  @ManyToOne("Tenant", { onDelete: "CASCADE" })
  @JoinColumn({ name: "tenant_id", foreignKeyConstraintName: "fk_api_key__tenant_id" })
  tenantRow?: Relation<Tenant>;

  @Field({ description: "The first characters of the key, to tell keys apart." })
  @Column({ type: "varchar", length: 16 })
  prefix!: string;

  /** SHA-256 of the whole key, hex. Keys are 256-bit random, so a fast hash is safe here. */
  @Column({ type: "char", length: 64, select: false })
  keyHash!: string;

  @Field()
  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @Field(() => Date, { nullable: true })
  @Column({ type: "timestamptz", nullable: true })
  revokedAt!: Date | null;
}
