import { ArrayMaxSize, IsArray, IsBoolean, IsEnum, IsInt, IsString, Length, Matches, Max, Min, ValidateIf } from "class-validator";
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import { Transport } from "../device/device.entity";

export enum TrunkRegistrationState {
  REGISTERED = "registered",
  FAILED = "failed",
  UNREGISTERED = "unregistered",
}
registerEnumType(TrunkRegistrationState, { name: "TrunkRegistrationState" });

@ObjectType({ simpleResolvers: true, description: "A SIP connection to a carrier: shared by every tenant (tenantId null) or a tenant's own." })
export class Trunk {
  @Field(() => ID)
  id!: number;

  @Field(() => ID, { nullable: true, description: "null: a shared trunk, managed by ADMIN, used by every tenant." })
  tenantId!: number | null;

  @Field()
  name!: string;

  @Field()
  host!: string;

  @Field(() => Int)
  port!: number;

  @Field(() => Transport)
  transport!: Transport;

  @Field(() => [String], { description: "IP addresses or CIDR blocks the carrier sends calls from." })
  inboundAddresses!: string[];

  @Field(() => String, { nullable: true })
  username!: string | null;

  @Field(() => String, { nullable: true })
  realm!: string | null;

  @Field({ description: "Whether a secret is set. The secret itself is never returned." })
  hasSecret!: boolean;

  @Field()
  register!: boolean;

  @Field(() => TrunkRegistrationState, { nullable: true, description: "What the engine reports; null when register is false." })
  registrationState!: TrunkRegistrationState | null;

  @Field(() => Int, { nullable: true, description: "Concurrent calls through it; null: no limit of its own." })
  maxChannels!: number | null;

  @Field()
  enabled!: boolean;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;
}

const present = (_: object, v: unknown) => v !== undefined;
const presentNotNull = (_: object, v: unknown) => v !== undefined && v !== null;
const M = {
  name: "The name must be a string of 1 to 255 characters.",
  host: "The host must be a hostname or an IPv4 address.",
  port: "The port must be a whole number from 1 to 65535.",
  transport: "The transport of a trunk must be UDP, TCP or TLS.",
  inboundAddresses: "The inbound addresses must be at most 32 IP addresses or CIDR blocks.",
  username: "The username must be 1 to 64 characters without spaces, ':' or '@'.",
  realm: "The realm must be a string of 1 to 253 characters.",
  secret: "The secret must be a string of 8 to 128 characters.",
  register: "The register field must be true or false.",
  maxChannels: "The max channels must be a whole number from 1 to 100000, or null.",
  enabled: "The enabled field must be true or false.",
};
export const TRUNK_MESSAGES = M;
const HOST = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const USERNAME = /^[^\s:@]{1,64}$/;

@InputType()
export class CreateTrunkInput {
  @Field(() => ID, { nullable: true, description: "The owning tenant; null (ADMIN only): a shared trunk. A tenant key may leave it out (its own)." })
  tenantId?: string | null;

  @Field()
  @IsString({ message: M.name })
  @Length(1, 255, { message: M.name })
  name!: string;

  @Field()
  @IsString({ message: M.host })
  @Matches(HOST, { message: M.host })
  host!: string;

  @Field(() => Int, { nullable: true, defaultValue: 5060 })
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.port })
  @Min(1, { message: M.port })
  @Max(65535, { message: M.port })
  port?: number | null;

  @Field(() => Transport, { nullable: true, defaultValue: Transport.UDP })
  @ValidateIf(presentNotNull)
  @IsEnum([Transport.UDP, Transport.TCP, Transport.TLS], { message: M.transport })
  transport?: Transport | null;

  @Field(() => [String], { nullable: true, description: "Default: the addresses host resolves to." })
  @ValidateIf(presentNotNull)
  @IsArray({ message: M.inboundAddresses })
  @ArrayMaxSize(32, { message: M.inboundAddresses })
  inboundAddresses?: string[] | null;

  @Field(() => String, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.username })
  @Matches(USERNAME, { message: M.username })
  username?: string | null;

  @Field(() => String, { nullable: true, description: "The digest realm the carrier challenges with; default: host." })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.realm })
  @Length(1, 253, { message: M.realm })
  realm?: string | null;

  @Field(() => String, { nullable: true, description: "What the engine answers the carrier's challenge with. Write-only." })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.secret })
  @Length(8, 128, { message: M.secret })
  secret?: string | null;

  @Field(() => Boolean, { nullable: true, defaultValue: false, description: "The engine registers to the carrier (needs username and secret)." })
  @ValidateIf(presentNotNull)
  @IsBoolean({ message: M.register })
  register?: boolean | null;

  @Field(() => Int, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.maxChannels })
  @Min(1, { message: M.maxChannels })
  @Max(100_000, { message: M.maxChannels })
  maxChannels?: number | null;

  @Field(() => Boolean, { nullable: true, defaultValue: true })
  @ValidateIf(presentNotNull)
  @IsBoolean({ message: M.enabled })
  enabled?: boolean | null;
}

@InputType()
export class UpdateTrunkInput {
  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.name })
  @Length(1, 255, { message: M.name })
  name?: string;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.host })
  @Matches(HOST, { message: M.host })
  host?: string;

  @Field(() => Int, { nullable: true })
  @ValidateIf(present)
  @IsInt({ message: M.port })
  @Min(1, { message: M.port })
  @Max(65535, { message: M.port })
  port?: number;

  @Field(() => Transport, { nullable: true })
  @ValidateIf(present)
  @IsEnum([Transport.UDP, Transport.TCP, Transport.TLS], { message: M.transport })
  transport?: Transport;

  @Field(() => [String], { nullable: true })
  @ValidateIf(present)
  @IsArray({ message: M.inboundAddresses })
  @ArrayMaxSize(32, { message: M.inboundAddresses })
  inboundAddresses?: string[];

  @Field(() => String, { nullable: true, description: "null removes it." })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.username })
  @Matches(USERNAME, { message: M.username })
  username?: string | null;

  @Field(() => String, { nullable: true, description: "null: the host." })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.realm })
  @Length(1, 253, { message: M.realm })
  realm?: string | null;

  @Field(() => String, { nullable: true, description: "A new secret; null removes it; absent keeps it." })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.secret })
  @Length(8, 128, { message: M.secret })
  secret?: string | null;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsBoolean({ message: M.register })
  register?: boolean;

  @Field(() => Int, { nullable: true, description: "null removes the limit." })
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.maxChannels })
  @Min(1, { message: M.maxChannels })
  @Max(100_000, { message: M.maxChannels })
  maxChannels?: number | null;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsBoolean({ message: M.enabled })
  enabled?: boolean;
}

