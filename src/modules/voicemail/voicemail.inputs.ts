import { IsISO8601, IsOptional, IsString, Matches, MaxLength, ValidateIf } from "class-validator";
import { ArgsType, Field, Int } from "type-graphql";

const M = {
  tenant: "Name the tenant by tenant_id or by domain.",
  extension: "The extension must be the extension's number (1 to 20 digits).",
  messageId: "The message_id is required: the engine's id of the message, at most 255 characters.",
};

/**
 * The form fields of `POST /api/voicemail` (contract §8), as the engine sends them: snake_case
 * strings straight from multipart/form-data. The audio part is judged by the upload parser.
 */
export class VoicemailDepositInput {
  @ValidateIf((o: VoicemailDepositInput) => o.domain === undefined || o.tenant_id !== undefined)
  @IsString({ message: M.tenant })
  @Matches(/^[1-9][0-9]{0,9}$/, { message: "The tenant_id must be a positive integer id." })
  tenant_id?: string;

  @ValidateIf((o: VoicemailDepositInput) => o.tenant_id === undefined || o.domain !== undefined)
  @IsString({ message: M.tenant })
  @Matches(/^\S{1,253}$/, { message: "The domain must be a SIP domain of at most 253 characters." })
  domain?: string;

  @IsString({ message: M.extension })
  @Matches(/^[0-9]{1,20}$/, { message: M.extension })
  extension?: string;

  @IsString({ message: M.messageId })
  @Matches(/^[^\p{Cc}]{1,255}$/u, { message: M.messageId })
  message_id?: string;

  @IsOptional()
  @IsString({ message: "The call_id must be a string." })
  @MaxLength(255, { message: "The call_id may not be longer than 255 characters." })
  call_id?: string;

  @IsOptional()
  @IsString({ message: "The caller_number must be a string." })
  @MaxLength(64, { message: "The caller_number may not be longer than 64 characters." })
  caller_number?: string;

  @IsOptional()
  @IsString({ message: "The caller_name must be a string." })
  @MaxLength(255, { message: "The caller_name may not be longer than 255 characters." })
  caller_name?: string;

  @IsOptional()
  @Matches(/^[0-9]{1,7}$/, { message: "The duration_seconds must be a whole number of seconds from 0 to 9999999." })
  duration_seconds?: string;

  @IsOptional()
  @IsISO8601({ strict: true }, { message: "The received_at must be an ISO-8601 date-time." })
  received_at?: string;
}

@ArgsType()
export class VoicemailPageArgs {
  @Field(() => Int, { nullable: true, description: "At most 100; default 20." })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;

  @Field(() => Boolean, { nullable: true, description: "Only heard (true) or only unheard (false) messages; all when left out." })
  heard?: boolean | null;
}

