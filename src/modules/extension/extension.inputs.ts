import { ArrayMaxSize, IsArray, IsBoolean, IsDefined, IsEmail, IsEnum, IsString, Length, Matches, MaxLength, ValidateIf } from "class-validator";
import { CallClass, DEFAULT_CALL_CLASSES } from "../outbound-route/call-class";
import { Field, ID, InputType } from "type-graphql";
import { ExtensionStatus } from "./extension.entity";

export const EXTENSION_NUMBER_PATTERN = /^[0-9]{1,20}$/;
export const SECRET_MIN = 8;
export const SECRET_MAX = 128;

/** Each input field's REST name (snake_case): REST bodies, import columns and the import's error fields use these. */
export const EXTENSION_REST_FIELDS = {
  tenant_id: "tenantId",
  extension_number: "extensionNumber",
  display_name: "displayName",
  email: "email",
  secret: "secret",
  status: "status",
  voicemail_enabled: "voicemailEnabled",
} as const;

/** Validate when the field was sent; undefined means "not given". */
const present = (_: object, value: unknown) => value !== undefined;
/** Validate when sent and not null; null clears an optional field. */
const presentNotNull = (_: object, value: unknown) => value !== undefined && value !== null;

const M = {
  number: "The extension number must be 1 to 20 digits.",
  displayName: "The display name must be a string of at most 255 characters.",
  email: "The email must be a valid email address of at most 255 characters.",
  secret: `The secret must be a string of ${SECRET_MIN} to ${SECRET_MAX} characters.`,
  status: "The status must be active or disabled.",
  voicemail: "The voicemail enabled field must be true or false.",
  callClasses: `The allowed call classes must be a list of ${Object.keys(CallClass).join(", ")}.`,
  callerId: "The caller ID must be one of the tenant's phone numbers (E.164).",
};

/** The extension rules of the contract, shared by GraphQL and REST (one place decides what a valid extension is). */
@InputType()
export class CreateExtensionInput {
  @Field(() => ID)
  @IsDefined({ message: "The tenant id field is required." })
  tenantId!: string | number;

  @Field()
  @IsString({ message: M.number })
  @Matches(EXTENSION_NUMBER_PATTERN, { message: M.number })
  extensionNumber!: string;

  @Field(() => String, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.displayName })
  @MaxLength(255, { message: M.displayName })
  displayName?: string | null;

  @Field(() => String, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.email })
  @MaxLength(255, { message: M.email })
  @IsEmail({}, { message: M.email })
  email?: string | null;

  @Field({ description: "SIP password, 8 to 128 characters. Write-only." })
  @IsString({ message: M.secret })
  @Length(SECRET_MIN, SECRET_MAX, { message: M.secret })
  secret!: string;

  @Field(() => ExtensionStatus, { nullable: true, defaultValue: ExtensionStatus.ACTIVE })
  @ValidateIf(presentNotNull)
  @IsEnum(ExtensionStatus, { message: M.status })
  status?: ExtensionStatus | null;

  @Field(() => Boolean, { nullable: true, defaultValue: false })
  @ValidateIf(presentNotNull)
  @IsBoolean({ message: M.voicemail })
  voicemailEnabled?: boolean | null;

  @Field(() => [CallClass], { nullable: true, defaultValue: [...DEFAULT_CALL_CLASSES], description: "Outbound route classes it may call (EMERGENCY is always allowed)." })
  @ValidateIf(presentNotNull)
  @IsArray({ message: M.callClasses })
  @ArrayMaxSize(5, { message: M.callClasses })
  @IsEnum(CallClass, { each: true, message: M.callClasses })
  allowedCallClasses?: CallClass[] | null;

  @Field(() => String, { nullable: true, description: "One of the tenant's phone numbers, sent as the caller of its outbound calls; null: the tenant's default." })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.callerId })
  @Matches(/^\+[1-9][0-9]{6,14}$/, { message: M.callerId })
  callerIdNumber?: string | null;
}

@InputType()
export class UpdateExtensionInput {
  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.number })
  @Matches(EXTENSION_NUMBER_PATTERN, { message: M.number })
  extensionNumber?: string;

  @Field(() => String, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.displayName })
  @MaxLength(255, { message: M.displayName })
  displayName?: string | null;

  @Field(() => String, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.email })
  @MaxLength(255, { message: M.email })
  @IsEmail({}, { message: M.email })
  email?: string | null;

  @Field({ nullable: true, description: "A new SIP password; absent keeps the current one." })
  @ValidateIf(present)
  @IsString({ message: M.secret })
  @Length(SECRET_MIN, SECRET_MAX, { message: M.secret })
  secret?: string;

  @Field(() => ExtensionStatus, { nullable: true })
  @ValidateIf(present)
  @IsEnum(ExtensionStatus, { message: M.status })
  status?: ExtensionStatus;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsBoolean({ message: M.voicemail })
  voicemailEnabled?: boolean;

  @Field(() => [CallClass], { nullable: true })
  @ValidateIf(presentNotNull)
  @IsArray({ message: M.callClasses })
  @ArrayMaxSize(5, { message: M.callClasses })
  @IsEnum(CallClass, { each: true, message: M.callClasses })
  allowedCallClasses?: CallClass[];

  @Field(() => String, { nullable: true, description: "null removes it (the tenant's default is used)." })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.callerId })
  @Matches(/^\+[1-9][0-9]{6,14}$/, { message: M.callerId })
  callerIdNumber?: string | null;
}
