import { IsDate, IsEnum, IsInt, IsString, Length, Max, MaxLength, Min, ValidateIf } from "class-validator";
import { Transport } from "./device.entity";

/** The largest registration lifetime a SIP Expires header can carry in a signed 32-bit value. */
export const MAX_EXPIRES_SECONDS = 2_147_483_647;

const presentNotNull = (_: object, value: unknown) => value !== undefined && value !== null;

const M = {
  contactUri: "The contact must be a string of 1 to 512 characters.",
  userAgent: "The user agent must be a string of at most 255 characters.",
  sourceAddress: "The source address must be a string of at most 64 characters.",
  transport: `The transport must be one of ${Object.values(Transport).join(", ")}.`,
  expires: `The expires must be a whole number of seconds from 1 to ${MAX_EXPIRES_SECONDS}.`,
  occurredAt: "The occurred at must be a valid date and time.",
};

/** One REGISTER (or refresh) of a SIP user agent, as the event path hands it to DeviceService. */
export class RegistrationInput {
  @IsString({ message: M.contactUri })
  @Length(1, 512, { message: M.contactUri })
  contactUri!: string;

  @ValidateIf(presentNotNull)
  @IsString({ message: M.userAgent })
  @MaxLength(255, { message: M.userAgent })
  userAgent?: string | null;

  @ValidateIf(presentNotNull)
  @IsString({ message: M.sourceAddress })
  @MaxLength(64, { message: M.sourceAddress })
  sourceAddress?: string | null;

  @ValidateIf(presentNotNull)
  @IsEnum(Transport, { message: M.transport })
  transport?: Transport | null;

  @IsInt({ message: M.expires })
  @Min(1, { message: M.expires })
  @Max(MAX_EXPIRES_SECONDS, { message: M.expires })
  expiresInSeconds!: number;

  @IsDate({ message: M.occurredAt })
  occurredAt!: Date;
}

/** One un-REGISTER (Expires: 0) of a SIP user agent. */
export class UnregistrationInput {
  @IsString({ message: M.contactUri })
  @Length(1, 512, { message: M.contactUri })
  contactUri!: string;

  @IsDate({ message: M.occurredAt })
  occurredAt!: Date;
}
