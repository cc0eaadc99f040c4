import { Field, Float, ID, Int, ObjectType } from "type-graphql";

@ObjectType({
  simpleResolvers: true,
  description:
    "A queue's live figures. Agents are counted once each: paused, else busy (on any call leg: ringing, answered or held), " +
    "else available. \"Today\" is the tenant's day in its timezone.",
})
export class QueueStats {
  @Field(() => ID)
  queueId!: number;

  @Field(() => Int, { description: "Callers in the queue now: joined, neither answered nor abandoned." })
  callsWaiting!: number;

  @Field(() => Int, { description: "How long the longest-waiting caller has waited, as of updatedAt; 0 when nobody waits." })
  longestWaitSeconds!: number;

  @Field(() => Int)
  agentsTotal!: number;

  @Field(() => Int, { description: "Agents neither paused nor on a call." })
  agentsAvailable!: number;

  @Field(() => Int, { description: "Agents not paused with a call leg in progress (in any queue or none)." })
  agentsBusy!: number;

  @Field(() => Int)
  agentsPaused!: number;

  @Field(() => Int, { description: "Calls of this queue answered since the start of the tenant's day." })
  answeredToday!: number;

  @Field(() => Int, { description: "Callers who hung up while waiting, since the start of the tenant's day." })
  abandonedToday!: number;

  @Field(() => Float, { description: "Mean seconds from join to answer over today's answered calls whose join is known; 0 when none." })
  averageWaitSeconds!: number;

  @Field(() => Float, {
    description:
      "Service level today, 0 to 1: calls answered within the queue's serviceLevelSeconds ÷ (calls answered + callers who abandoned after waiting longer than serviceLevelSeconds), over calls whose join is known; 1 when there is none yet.",
  })
  serviceLevel!: number;

  @Field({ description: "When these figures were computed (the database's clock)." })
  updatedAt!: Date;
}
