import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
import { DateTimeResolver } from "graphql-scalars";
import { buildSchema } from "type-graphql";
import { ActiveCallResolver, ExtensionActiveCallsResolver, TenantActiveCallsResolver } from "../modules/active-call/active-call.resolver";
import { ApiKeyResolver } from "../modules/api-key/api-key.resolver";
import { CdrResolver, ExtensionCdrsResolver, TenantCdrsResolver } from "../modules/cdr/cdr.resolver";
import { DeviceResolver } from "../modules/device/device.resolver";
import { ExtensionDevicesResolver } from "../modules/device/extension-devices.resolver";
import { ExtensionResolver } from "../modules/extension/extension.resolver";
import { ExtensionQueuesResolver } from "../modules/queue/extension-queues.resolver";
import { QueueAgentResolver } from "../modules/queue/queue-agent.resolver";
import { QueueResolver } from "../modules/queue/queue.resolver";
import { QueueStatsResolver } from "../modules/queue/queue-stats.resolver";
import { TenantQueuesResolver } from "../modules/queue/tenant-queues.resolver";
import { TenantResolver } from "../modules/tenant/tenant.resolver";
import { AuditResolver } from "../modules/audit/audit.resolver";
import { LiveResolver } from "../subscriptions/live.resolver";
import { TenantWebhooksResolver, WebhookResolver } from "../modules/webhook/webhook.resolver";
import { ExtensionVoicemailResolver, VoicemailResolver } from "../modules/voicemail/voicemail.resolver";
import { topicIterator } from "../subscriptions/live";
import { RingGroupMemberResolver, RingGroupResolver, TenantRingGroupsResolver } from "../modules/ring-group/ring-group.resolver";
import { ExtensionCallHandlingResolver } from "../modules/call-handling/call-handling.resolver";
import { InProcessPubSub, type PubSubEngine } from "../events/pubsub";
import { PhoneNumberResolver, TenantPhoneNumbersResolver } from "../modules/phone-number/phone-number.resolver";
import { TrunkResolver, TenantTrunksResolver } from "../modules/trunk/trunk.resolver";
import { ActiveCallTrunkResolver, CdrTrunkResolver } from "../modules/trunk/call-trunk.resolver";
import { OutboundRouteResolver, TenantOutboundRoutesResolver } from "../modules/outbound-route/outbound-route.resolver";

export const resolvers = [TenantResolver, ExtensionResolver, ApiKeyResolver, QueueResolver, QueueAgentResolver, TenantQueuesResolver, ExtensionQueuesResolver, DeviceResolver, ExtensionDevicesResolver, CdrResolver, TenantCdrsResolver, ExtensionCdrsResolver, ActiveCallResolver, TenantActiveCallsResolver, ExtensionActiveCallsResolver, LiveResolver, QueueStatsResolver, AuditResolver, WebhookResolver, TenantWebhooksResolver, VoicemailResolver, ExtensionVoicemailResolver, RingGroupResolver, RingGroupMemberResolver, TenantRingGroupsResolver, ExtensionCallHandlingResolver, PhoneNumberResolver, TenantPhoneNumbersResolver, TrunkResolver, TenantTrunksResolver, CdrTrunkResolver, ActiveCallTrunkResolver, OutboundRouteResolver, TenantOutboundRoutesResolver] as const;

/**
 * Builds the executable schema. Validation is not TypeGraphQL's job here: the service layer runs
 * the class-validator rules, so REST and GraphQL share them.
 */
export function buildAppSchema(pubsub: PubSubEngine = new InProcessPubSub()): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [...resolvers],
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    validate: false,
    // TypeGraphQL's own topic API, over the same engine as every other publisher.
    pubSub: {
      publish: (topic: string, payload: unknown) => void pubsub.publish(topic, payload),
      subscribe: (topic: string) => topicIterator(pubsub, { topic }),
    },
  });
}

/** The committed SDL (schema/schema.graphql): sorted, so diffs show real changes only. */
export function printAppSchema(schema: GraphQLSchema): string {
  return printSchema(lexicographicSortSchema(schema)) + "\n";
}
