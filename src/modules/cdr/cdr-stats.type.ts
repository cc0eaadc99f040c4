import { ArgsType, Field, Float, Int, ObjectType, registerEnumType } from "type-graphql";

export enum CdrStatsGroupBy {
  DAY = "DAY",
}
registerEnumType(CdrStatsGroupBy, { name: "CdrStatsGroupBy", description: "The bucket size of CDR statistics." });

/** The longest window one cdrStats read may cover: a year of days (and one more for a leap year). */
export const CDR_STATS_MAX_DAYS = 366;

@ArgsType()
export class CdrStatsArgs {
  @Field(() => Date, { description: "Calls that started at or after this instant." })
  from!: Date;

  @Field(() => Date, { description: `Calls that started before this instant (exclusive); at most ${CDR_STATS_MAX_DAYS} days after from.` })
  to!: Date;

  @Field(() => CdrStatsGroupBy, { defaultValue: CdrStatsGroupBy.DAY })
  groupBy!: CdrStatsGroupBy;
}

@ObjectType({ simpleResolvers: true, description: "The calls of one bucket (a day in the tenant's time zone) of CdrStats." })
export class CdrStatsBucket {
  @Field({ description: "The bucket's calendar day in the tenant's time zone, YYYY-MM-DD." })
  day!: string;

  @Field(() => Date, { description: "The instant that day begins in the tenant's time zone." })
  periodStart!: Date;

  @Field(() => Int, { description: "CDRs that started in the bucket (and inside from..to)." })
  calls!: number;

  @Field(() => Int, { description: "Of those, the answered ones." })
  answered!: number;

  @Field(() => Float, { nullable: true, description: "Mean durationSeconds of the answered ones, to 0.1 s; null when none was answered." })
  averageAnsweredSeconds!: number | null;
}
