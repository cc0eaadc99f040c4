import { Field, ObjectType } from "type-graphql";

@ObjectType({ simpleResolvers: true, description: "A caller waiting in a queue now: joined, neither answered nor abandoned." })
export class WaitingCall {
  @Field({ description: "The engine's call id of the caller's passage through the queue (the queue event's call_id)." })
  callId!: string;

  @Field({ description: "When the caller joined the queue (the engine's time): the wait is now − joinedAt." })
  joinedAt!: Date;

  @Field(() => String, { nullable: true, description: "The caller's number, when the queue's events gave it (caller_number)." })
  callerNumber!: string | null;

  @Field(() => String, { nullable: true, description: "The caller's name, when the queue's events gave it (caller_name)." })
  callerName!: string | null;
}
