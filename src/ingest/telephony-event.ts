import { IsIn, IsInt, IsISO8601, IsOptional, IsString, Matches, MaxLength, Min, Max, ValidateIf, validate, type ValidationError } from "class-validator";
import type { FieldErrors } from "../common/errors";
import { assignOwn } from "../common/json";

/**
 * Telephony events as the SIP engine sends them (contract §6): snake_case JSON, enum values in
 * lower case, the tenant named by `tenant_id` or by SIP `domain`, the extension by its number.
 * One validator for both ingestion paths (HTTP and the Redis stream).
 */
const DIGITS = /^[0-9]{1,20}$/;
const M = {
  extension: "The extension must be the extension's number (1 to 20 digits).",
  tenant: "Name the tenant by tenant_id or by domain.",
  occurredAt: "The occurred_at must be an ISO-8601 date-time.",
};

abstract class TenantScopedEvent {
  @ValidateIf((o: TenantScopedEvent) => o.domain === undefined || o.tenant_id !== undefined)
  @IsInt({ message: M.tenant })
  @Min(1, { message: M.tenant })
  tenant_id?: number;

  @ValidateIf((o: TenantScopedEvent) => o.tenant_id === undefined || o.domain !== undefined)
  @IsString({ message: M.tenant })
  @MaxLength(253, { message: "The domain may not be longer than 253 characters." })
  domain?: string;

  @IsOptional()
  @IsISO8601({ strict: true }, { message: M.occurredAt })
  occurred_at?: string;
}

export class RegistrationEventInput extends TenantScopedEvent {
  type!: "registration";

  @IsIn(["register", "unregister"], { message: "The action must be register or unregister." })
  action!: "register" | "unregister";

  @IsString({ message: M.extension })
  @Matches(DIGITS, { message: M.extension })
  extension!: string;

  @ValidateIf((o: RegistrationEventInput) => o.action === "register" || o.contact !== undefined)
  @IsString({ message: "The contact (the SIP Contact URI) is required to register." })
  @Matches(/^\S{1,512}$/, { message: "The contact must be a URI of at most 512 characters, without spaces." })
  contact?: string;

  // (user_agent, source_address and the call's numbers, name and cause are cut, not refused: DESCRIPTIVE below)
  @IsOptional()
  @IsString({ message: "The user_agent must be a string." })
  user_agent?: string;

  @IsOptional()
  @IsString({ message: "The source_address must be a string." })
  source_address?: string;

  @IsOptional()
  @IsIn(["udp", "tcp", "tls", "ws", "wss"], { message: "The transport must be one of udp, tcp, tls, ws, wss." })
  transport?: "udp" | "tcp" | "tls" | "ws" | "wss";

  @ValidateIf((o: RegistrationEventInput) => o.action === "register" || o.expires !== undefined)
  @IsInt({ message: "The expires must be a whole number of seconds (0 to 604800)." })
  @Min(0, { message: "The expires must be a whole number of seconds (0 to 604800)." })
  @Max(604_800, { message: "The expires must be a whole number of seconds (0 to 604800)." })
  expires?: number;
}

export class CallEventInput extends TenantScopedEvent {
  type!: "call";

  @IsIn(["start", "answer", "hold", "resume", "end"], { message: "The action must be start, answer, hold, resume or end." })
  action!: "start" | "answer" | "hold" | "resume" | "end";

  @IsString({ message: "The call_id is required." })
  @Matches(/^\S{1,255}$/, { message: "The call_id must be 1 to 255 characters without spaces." })
  call_id!: string;

  @IsOptional()
  @IsString({ message: "The linked_id must be a string." })
  @MaxLength(255, { message: "The linked_id may not be longer than 255 characters." })
  linked_id?: string;

  @IsString({ message: M.extension })
  @Matches(DIGITS, { message: M.extension })
  extension!: string;

  @ValidateIf((o: CallEventInput) => o.action === "start" || o.direction !== undefined)
  @IsIn(["inbound", "outbound", "internal"], { message: "The direction must be inbound, outbound or internal." })
  direction?: "inbound" | "outbound" | "internal";

  @IsOptional()
  @IsString({ message: "The caller_number must be a string." })
  caller_number?: string;

  @IsOptional()
  @IsString({ message: "The caller_name must be a string." })
  caller_name?: string;

  @IsOptional()
  @IsString({ message: "The callee_number must be a string." })
  callee_number?: string;

  @IsOptional()
  @IsString({ message: "The queue must be the queue's number." })
  @Matches(DIGITS, { message: "The queue must be the queue's number." })
  queue?: string;

  @IsOptional()
  @IsIn(["answered", "no_answer", "busy", "failed", "voicemail"], { message: "The disposition must be answered, no_answer, busy, failed or voicemail." })
  disposition?: "answered" | "no_answer" | "busy" | "failed" | "voicemail";

  @IsOptional()
  @IsInt({ message: "The trunk_id must be the trunk's id." })
  @Min(1, { message: "The trunk_id must be the trunk's id." })
  trunk_id?: number;

  @IsOptional()
  @IsString({ message: "The phone_number must be the tenant's number (E.164)." })
  @Matches(/^\+[1-9][0-9]{6,14}$/, { message: "The phone_number must be the tenant's number (E.164)." })
  phone_number?: string;

  @IsOptional()
  @IsString({ message: "The external_number must be a string." })
  @MaxLength(64, { message: "The external_number may not be longer than 64 characters." })
  external_number?: string;

  @IsOptional()
  @IsString({ message: "The hangup_cause must be a string." })
  hangup_cause?: string;
}

export class QueueEventInput extends TenantScopedEvent {
  type!: "queue";

  @IsIn(["join", "answer", "abandon"], { message: "The action must be join, answer or abandon." })
  action!: "join" | "answer" | "abandon";

  @IsString({ message: "The queue must be the queue's number." })
  @Matches(DIGITS, { message: "The queue must be the queue's number." })
  queue!: string;

  @IsString({ message: "The call_id is required." })
  @Matches(/^\S{1,255}$/, { message: "The call_id must be 1 to 255 characters without spaces." })
  call_id!: string;

  @ValidateIf((o: QueueEventInput) => o.action === "answer" || o.agent !== undefined)
  @IsString({ message: "The agent must be the answering extension's number." })
  @Matches(DIGITS, { message: "The agent must be the answering extension's number." })
  agent?: string;

  /** Who is waiting (a wallboard shows it): kept from the first event that gives it. */
  @IsOptional()
  @IsString({ message: "The caller_number must be a string." })
  @MaxLength(64, { message: "The caller_number may not be longer than 64 characters." })
  caller_number?: string;

  @IsOptional()
  @IsString({ message: "The caller_name must be a string." })
  @MaxLength(255, { message: "The caller_name may not be longer than 255 characters." })
  caller_name?: string;
}

export type TelephonyEvent = RegistrationEventInput | CallEventInput | QueueEventInput;

const CLASSES = { registration: RegistrationEventInput, call: CallEventInput, queue: QueueEventInput } as const;

function collect(errors: ValidationError[]): FieldErrors {
  const fields: FieldErrors = {};
  // Two rules may share one message (type and format); say it once.
  for (const e of errors) if (e.constraints) fields[e.property] = [...new Set(Object.values(e.constraints))];
  return fields;
}

/**
 * Fields that only describe a call or a registration (a display name, a user agent, the numbers as
 * the engine saw them): too long, they are cut to their column's size rather than refuse the
 * event, because an event refused is a real call with no active call and no CDR (a phone chooses
 * its From display name). Cut on code points, as PostgreSQL's varchar(n) counts, so a surrogate
 * pair is never split; NUL, which PostgreSQL cannot store, is dropped. A value of the wrong type is
 * still refused: that is a broken engine, not a long name.
 */
const DESCRIPTIVE: Record<string, number> = { caller_name: 255, user_agent: 255, caller_number: 64, callee_number: 64, hangup_cause: 64, source_address: 64 };

function cutDescriptiveFields(event: object): void {
  const fields = event as Record<string, unknown>;
  for (const [key, max] of Object.entries(DESCRIPTIVE)) {
    const value = fields[key];
    if (typeof value === "string" && Object.prototype.hasOwnProperty.call(fields, key)) fields[key] = cutToCodePoints(value.replaceAll("\u0000", ""), max);
  }
}

function cutToCodePoints(value: string, max: number): string {
  if (value.length <= max) return value;
  let end = 0;
  let count = 0;
  for (const char of value) {
    if (count === max) break;
    end += char.length;
    count += 1;
  }
  return value.slice(0, end);
}

/** Parses and validates one event; returns the typed event or the field errors that refuse it. */
export async function parseTelephonyEvent(raw: unknown): Promise<{ event: TelephonyEvent } | { errors: FieldErrors }> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { errors: { event: ["Each event must be a JSON object."] } };
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== "string" || !(type in CLASSES)) return { errors: { type: ["The type must be registration, call or queue."] } };
  const event = assignOwn(new CLASSES[type as keyof typeof CLASSES](), raw) as TelephonyEvent;
  cutDescriptiveFields(event);
  const fields = collect(await validate(event, { forbidUnknownValues: false, validationError: { target: false, value: false } }));
  for (const [key, value] of Object.entries(event)) {
    if (typeof value === "string" && value.includes("\u0000")) (fields[key] ??= []).push("The value may not contain NUL characters.");
  }
  return Object.keys(fields).length ? { errors: fields } : { event };
}
