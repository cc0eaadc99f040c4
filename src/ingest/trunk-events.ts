import { IsIn, IsInt, IsISO8601, IsOptional, Min, validate } from "class-validator";
import { ErrorCode, type FieldErrors } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import { transactional } from "../db/transaction";
import { TrunkRegistrationState } from "../modules/trunk/trunk.types";
import type { IngestOutcome } from "./ingest.service";

/**
 * The engine's report on a carrier registration (contract §11, Trunk.registrationState):
 * `{"type":"trunk","action":"registration","trunk_id","state":"registered|failed|unregistered"}`.
 * Not tenant-scoped (a shared trunk has no tenant): a tenant-bound INGEST key may report only its
 * own tenant's trunks. Repeats change nothing.
 */
export class TrunkEventInput {
  type!: "trunk";

  @IsIn(["registration"], { message: "The action must be registration." })
  action!: "registration";

  @IsInt({ message: "The trunk_id must be the trunk's id." })
  @Min(1, { message: "The trunk_id must be the trunk's id." })
  trunk_id!: number;

  @IsIn(Object.values(TrunkRegistrationState), { message: "The state must be registered, failed or unregistered." })
  state!: TrunkRegistrationState;

  @IsOptional()
  @IsISO8601({ strict: true }, { message: "The occurred_at must be an ISO-8601 date-time." })
  occurred_at?: string;
}

export const isTrunkEvent = (raw: unknown): boolean => typeof raw === "object" && raw !== null && (raw as { type?: unknown }).type === "trunk";

export async function applyTrunkEvent(ctx: RequestContext, raw: object): Promise<IngestOutcome> {
  const event = Object.assign(new TrunkEventInput(), raw);
  const errors = await validate(event, { forbidUnknownValues: false, validationError: { target: false, value: false } });
  if (errors.length) {
    const fields: FieldErrors = {};
    for (const e of errors) if (e.constraints) fields[e.property] = [...new Set(Object.values(e.constraints))];
    return { status: "rejected", code: ErrorCode.BAD_USER_INPUT, message: "The event is invalid.", errors: fields };
  }
  const changed = await transactional(ctx, (tx) => tx.services.trunks.recordRegistration(tx, event.trunk_id, event.state));
  if (changed === null) return { status: "rejected", code: ErrorCode.BAD_USER_INPUT, message: "The event is invalid.", errors: { trunk_id: ["No registering trunk has this id."] } };
  return changed
    ? { status: "applied", type: "trunk", action: "registration" }
    : { status: "duplicate", type: "trunk", action: "registration", reason: "the trunk is already in this state" };
}
