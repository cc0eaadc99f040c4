import { Field, ID, Int, ObjectType } from "type-graphql";
import { Check, Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, Unique, UpdateDateColumn } from "typeorm";

@ObjectType({ simpleResolvers: true, description: "A customer organisation; the SIP realm and the unit of isolation." })
@Entity({ name: "tenant" })
@Unique("uq_tenant__slug", ["slug"])
@Unique("uq_tenant__sip_domain", ["sipDomain"])
@Check("ck_tenant__max_extensions", `"max_extensions" >= 0`)
@Check("ck_tenant__sip_domain_lower_case", `"sip_domain" = lower("sip_domain")`)
@Check("ck_tenant__max_outbound_calls", `"max_outbound_calls" >= 0`)
export class Tenant {
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_tenant" })
  id!: number;

  @Field()
  @Column({ type: "varchar", length: 255 })
  name!: string;

  @Field({ description: "URL-safe unique name, ^[a-z0-9-]{1,63}$." })
  @Column({ type: "varchar", length: 63 })
  slug!: string;

  @Field({ description: "Unique SIP domain: the realm of the tenant's extensions." })
  @Column({ type: "varchar", length: 253 })
  sipDomain!: string;

  @Field(() => Int, { description: "How many extensions may exist at once." })
  @Column({ type: "integer" })
  maxExtensions!: number;

  @Field({ description: "IANA time zone of the tenant (default UTC); its day is the wallboards' \"today\"." })
  @Column({ type: "varchar", length: 64, default: "UTC" })
  timezone!: string;

  @Field(() => String, { nullable: true, description: "The caller ID of outbound calls of extensions without one: one of the tenant's phone numbers." })
  @Column({ type: "varchar", length: 16, nullable: true })
  defaultCallerIdNumber!: string | null;

  @Field(() => Int, { description: "How many outbound calls of the tenant may be in progress at once (default 10)." })
  @Column({ type: "integer", default: 10 })
  maxOutboundCalls!: number;

  @Field()
  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @Field()
  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
