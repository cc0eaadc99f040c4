import { ArrayMaxSize, ArrayMinSize, IsArray, IsBoolean, IsDefined, IsIn, IsString, Length, MaxLength, ValidateIf } from "class-validator";
import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";

/** Every event name a webhook may subscribe to (contract §9); `*` is all of them. */
export const WEBHOOK_EVENT_NAMES = [
  "registration.registered",
  "registration.refreshed",
  "registration.unregistered",
  "registration.expired",
  "call.started",
  "call.answered",
  "call.held",
  "call.resumed",
  "call.ended",
  "voicemail.new",
  "voicemail.heard",
  "voicemail.unheard",
  "voicemail.deleted",
  "extension.created",
  "extension.updated",
  "extension.deleted",
  "*",
] as const;

export enum WebhookDeliveryStatus {
  PENDING = "pending",
  DELIVERED = "delivered",
  FAILED = "failed",
}
registerEnumType(WebhookDeliveryStatus, { name: "WebhookDeliveryStatus" });

const presentNotNull = (_: object, value: unknown) => value !== undefined && value !== null;

const M = {
  url: "The url must be an http or https URL of at most 2048 characters.",
  events: `The events must be a list of 1 to ${WEBHOOK_EVENT_NAMES.length} names out of: ${WEBHOOK_EVENT_NAMES.join(", ")}.`,
  description: "The description must be a string of at most 255 characters.",
  enabled: "The enabled field must be true or false.",
};

@ObjectType({ simpleResolvers: true, description: "An HTTP endpoint of a tenant that receives its events, signed (X-Pbx-Signature)." })
export class Webhook {
  @Field(() => ID)
  id!: number;

  @Field(() => ID)
  tenantId!: number;

  @Field()
  url!: string;

  @Field(() => [String])
  events!: string[];

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field()
  enabled!: boolean;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;
}

@ObjectType({ simpleResolvers: true, description: "One event sent (or to be sent) to one webhook, with its attempts." })
export class WebhookDelivery {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  webhookId!: number;

  @Field(() => String, { description: "The event's sequence in its tenant's log." })
  sequence!: string;

  @Field({ description: "The event name, e.g. call.started." })
  eventType!: string;

  @Field(() => WebhookDeliveryStatus)
  status!: WebhookDeliveryStatus;

  @Field(() => Int)
  attempts!: number;

  @Field(() => Int, { nullable: true, description: "The HTTP status of the last answer, if any." })
  responseStatus!: number | null;

  @Field(() => String, { nullable: true, description: "Why the last attempt failed." })
  error!: string | null;

  @Field()
  createdAt!: Date;

  @Field(() => Date, { nullable: true })
  deliveredAt!: Date | null;

  @Field(() => Date, { nullable: true, description: "When the next attempt is due (pending deliveries)." })
  nextAttemptAt!: Date | null;
}

@ObjectType({ simpleResolvers: true })
export class CreatedWebhook {
  @Field(() => Webhook)
  webhook!: Webhook;

  @Field({ description: "The signing secret. Shown only here (and by rotateWebhookSecret), once: store it now." })
  secret!: string;
}

@InputType()
export class CreateWebhookInput {
  @Field(() => ID, { nullable: true, description: "Tenant keys may leave it out (their own); an ADMIN names it." })
  tenantId?: string | number | null;

  @Field()
  @IsDefined({ message: "The url field is required." })
  @IsString({ message: M.url })
  @Length(1, 2048, { message: M.url })
  url!: string;

  @Field(() => [String])
  @IsDefined({ message: "The events field is required." })
  @IsArray({ message: M.events })
  @ArrayMinSize(1, { message: M.events })
  @ArrayMaxSize(WEBHOOK_EVENT_NAMES.length, { message: M.events })
  @IsIn(WEBHOOK_EVENT_NAMES, { each: true, message: M.events })
  events!: string[];

  @Field(() => String, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.description })
  @MaxLength(255, { message: M.description })
  description?: string | null;
}

@InputType()
export class UpdateWebhookInput {
  @Field({ nullable: true })
  @ValidateIf((_, v) => v !== undefined)
  @IsString({ message: M.url })
  @Length(1, 2048, { message: M.url })
  url?: string;

  @Field(() => [String], { nullable: true })
  @ValidateIf((_, v) => v !== undefined)
  @IsArray({ message: M.events })
  @ArrayMinSize(1, { message: M.events })
  @ArrayMaxSize(WEBHOOK_EVENT_NAMES.length, { message: M.events })
  @IsIn(WEBHOOK_EVENT_NAMES, { each: true, message: M.events })
  events?: string[];

  @Field(() => String, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsString({ message: M.description })
  @MaxLength(255, { message: M.description })
  description?: string | null;

  @Field({ nullable: true })
  @ValidateIf((_, v) => v !== undefined)
  @IsBoolean({ message: M.enabled })
  enabled?: boolean;
}

@ArgsType()
export class WebhookDeliveryPageArgs {
  @Field(() => Int, { nullable: true })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;

  @Field(() => WebhookDeliveryStatus, { nullable: true })
  status?: WebhookDeliveryStatus | null;
}
