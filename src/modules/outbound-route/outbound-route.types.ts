import { ArrayMaxSize, ArrayMinSize, IsArray, IsBoolean, IsEnum, IsInt, IsString, Length, Max, Min, ValidateIf } from "class-validator";
import { Field, ID, InputType, Int, ObjectType } from "type-graphql";
import { CallClass } from "./call-class";

@ObjectType({ simpleResolvers: true, description: "Where dialled numbers of a tenant go out: the first enabled route (lowest priority) whose match fits." })
export class OutboundRoute {
  @Field(() => ID)
  id!: number;

  @Field(() => ID)
  tenantId!: number;

  @Field()
  name!: string;

  @Field(() => Int, { description: "Lower first." })
  priority!: number;

  @Field({ description: "An anchored regular expression over the dialled digits, in the portable subset." })
  match!: string;

  @Field({ description: "The number sent to the carrier, with \\1…\\9 for the match's groups." })
  transform!: string;

  @Field(() => CallClass)
  callClass!: CallClass;

  @Field()
  enabled!: boolean;

  /** The trunks' ids in the order they are tried (the `trunks` field resolves them). */
  trunkIds!: number[];

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;
}

const present = (_: object, v: unknown) => v !== undefined;
const presentNotNull = (_: object, v: unknown) => v !== undefined && v !== null;
const M = {
  name: "The name must be a string of 1 to 255 characters.",
  priority: "The priority must be a whole number from 0 to 1000000.",
  match: "The match must be a string.",
  transform: "The transform must be a string.",
  callClass: `The call class must be one of ${Object.keys(CallClass).join(", ")}.`,
  trunkIds: "The trunk ids must list 1 to 10 trunks.",
  enabled: "The enabled field must be true or false.",
};

@InputType()
export class CreateOutboundRouteInput {
  @Field(() => ID)
  tenantId!: string;

  @Field()
  @IsString({ message: M.name })
  @Length(1, 255, { message: M.name })
  name!: string;

  @Field(() => Int)
  @IsInt({ message: M.priority })
  @Min(0, { message: M.priority })
  @Max(1_000_000, { message: M.priority })
  priority!: number;

  @Field()
  @IsString({ message: M.match })
  match!: string;

  @Field()
  @IsString({ message: M.transform })
  transform!: string;

  @Field(() => CallClass)
  @IsEnum(CallClass, { message: M.callClass })
  callClass!: CallClass;

  @Field(() => [ID], { description: "Tried in this order: the next one on a 5xx, a 408 or a full trunk." })
  @IsArray({ message: M.trunkIds })
  @ArrayMinSize(1, { message: M.trunkIds })
  @ArrayMaxSize(10, { message: M.trunkIds })
  trunkIds!: string[];

  @Field(() => Boolean, { nullable: true, defaultValue: true })
  @ValidateIf(presentNotNull)
  @IsBoolean({ message: M.enabled })
  enabled?: boolean | null;
}

@InputType()
export class UpdateOutboundRouteInput {
  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.name })
  @Length(1, 255, { message: M.name })
  name?: string;

  @Field(() => Int, { nullable: true })
  @ValidateIf(present)
  @IsInt({ message: M.priority })
  @Min(0, { message: M.priority })
  @Max(1_000_000, { message: M.priority })
  priority?: number;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.match })
  match?: string;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.transform })
  transform?: string;

  @Field(() => CallClass, { nullable: true })
  @ValidateIf(present)
  @IsEnum(CallClass, { message: M.callClass })
  callClass?: CallClass;

  @Field(() => [ID], { nullable: true })
  @ValidateIf(present)
  @IsArray({ message: M.trunkIds })
  @ArrayMinSize(1, { message: M.trunkIds })
  @ArrayMaxSize(10, { message: M.trunkIds })
  trunkIds?: string[];

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsBoolean({ message: M.enabled })
  enabled?: boolean;
}
