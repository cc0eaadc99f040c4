import { Field, ID, Int, ObjectType, registerEnumType } from "type-graphql";

export enum RingGroupStrategy {
  SIMULTANEOUS = "simultaneous",
  SEQUENTIAL = "sequential",
}
registerEnumType(RingGroupStrategy, {
  name: "RingGroupStrategy",
  valuesConfig: {
    SIMULTANEOUS: { description: "Every member rings at once for ringSeconds." },
    SEQUENTIAL: { description: "Members ring one after another, in position order, ringSeconds each." },
  },
});

/**
 * A ring group of a tenant (contract §12): a dialable number that rings its members, members on
 * do-not-disturb or with no registered device skipped; nobody answering → `fallback`.
 * `fallback` and `members` are resolved from the row (ring-group.resolver.ts).
 */
@ObjectType({ simpleResolvers: true })
export class RingGroup {
  @Field(() => ID)
  id!: number;

  @Field(() => ID)
  tenantId!: number;

  @Field()
  name!: string;

  @Field({ description: "Dialable: digits only, in the tenant's one dial plan with extensions and queues." })
  number!: string;

  @Field(() => RingGroupStrategy)
  strategy!: RingGroupStrategy;

  @Field(() => Int, { description: "How long each member rings (SEQUENTIAL), or all of them (SIMULTANEOUS): 5 to 120 seconds." })
  ringSeconds!: number;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;
}

@ObjectType({ simpleResolvers: true, description: "An extension of the group's tenant, rung in `position` order (SEQUENTIAL)." })
export class RingGroupMember {
  @Field(() => ID)
  id!: number;

  @Field(() => Int)
  position!: number;
}
