import type { DataSource } from "typeorm";
import type { AppConfig } from "./config/config";
import type { SecretBox } from "./common/secret-box";
import { ActiveCallService } from "./modules/active-call/active-call.service";
import { ApiKeyService } from "./modules/api-key/api-key.service";
import { CdrService } from "./modules/cdr/cdr.service";
import { CdrStatsService } from "./modules/cdr/cdr-stats.service";
import { DeviceService } from "./modules/device/device.service";
import { ExtensionCredentials } from "./modules/extension/extension-credentials";
import { ExtensionService } from "./modules/extension/extension.service";
import { ExtensionImportService } from "./modules/extension/extension-import";
import { QueueService } from "./modules/queue/queue.service";
import { QueueStatsService } from "./modules/queue/queue-stats.service";
import { TenantService } from "./modules/tenant/tenant.service";
import { IngestService } from "./ingest/ingest.service";
import { AuditService } from "./modules/audit/audit.service";
import type { Logger } from "./common/logger";
import { EventLog } from "./events/event-log";
import type { PubSubEngine } from "./events/pubsub";
import { WebhookService } from "./modules/webhook/webhook.service";
import { VoicemailService } from "./modules/voicemail/voicemail.service";
import { RingGroupService } from "./modules/ring-group/ring-group.service";
import { CallHandlingService } from "./modules/call-handling/call-handling.service";
import { PhoneNumberService } from "./modules/phone-number/phone-number.service";
import { TrunkService } from "./modules/trunk/trunk.service";
import { OutboundRouteService } from "./modules/outbound-route/outbound-route.service";

/** The service layer: every business rule lives here, shared by GraphQL, REST and ingestion. */
export interface Services {
  tenants: TenantService;
  extensions: ExtensionService;
  extensionImport: ExtensionImportService;
  /** Secrets and SIP digests of extensions: the one writer of both (contract §7). */
  credentials: ExtensionCredentials;
  apiKeys: ApiKeyService;
  queues: QueueService;
  queueStats: QueueStatsService;
  devices: DeviceService;
  cdrs: CdrService;
  cdrStats: CdrStatsService;
  activeCalls: ActiveCallService;
  ingest: IngestService;
  audit: AuditService;
  /** The tenants' event log: written by transactional(), relayed to pub/sub, read by resumed subscriptions. */
  events: EventLog;
  webhooks: WebhookService;
  voicemail: VoicemailService;
  /** Ring groups and their members (contract §12). */
  ringGroups: RingGroupService;
  /** Extensions' forwarding, do-not-disturb and ring time (contract §12). */
  callHandling: CallHandlingService;
  phoneNumbers: PhoneNumberService;
  trunks: TrunkService;
  outboundRoutes: OutboundRouteService;
}

export interface ServiceDeps {
  dataSource: DataSource;
  config: AppConfig;
  secretBox: SecretBox;
  log: Logger;
  /** Where logged events are relayed; null (CLI scripts) leaves them for a server to relay. */
  pubsub: PubSubEngine | null;
}

export function createServices(deps: ServiceDeps): Services {
  const credentials = new ExtensionCredentials(deps.secretBox);
  const tenants = new TenantService(credentials);
  const devices = new DeviceService();
  const extensions = new ExtensionService(tenants, credentials);
  const events = new EventLog(
    deps.dataSource,
    deps.pubsub,
    { pollMs: deps.config.eventRelayPollMs, retentionHours: deps.config.eventLogRetentionHours, relayDelayMs: deps.config.eventRelayDelayMs },
    deps.log,
  );
  const webhooks = new WebhookService(deps.secretBox, deps.config.webhooks.allowPrivate);
  events.onRelay(webhooks.relaySink);
  return {
    tenants,
    extensions,
    extensionImport: new ExtensionImportService(extensions, tenants, credentials),
    credentials,
    apiKeys: new ApiKeyService(deps.dataSource, deps.config.adminApiKey, deps.config.engineApiKey),
    queues: new QueueService(),
    queueStats: new QueueStatsService(),
    devices,
    cdrs: new CdrService(),
    cdrStats: new CdrStatsService(),
    activeCalls: new ActiveCallService(),
    ingest: new IngestService(devices),
    audit: new AuditService(),
    events,
    webhooks,
    voicemail: new VoicemailService({ maxMessages: deps.config.voicemail.maxMessages }),
    ringGroups: new RingGroupService(),
    callHandling: new CallHandlingService(extensions),
    phoneNumbers: new PhoneNumberService(),
    trunks: new TrunkService(deps.secretBox),
    outboundRoutes: new OutboundRouteService(),
  };
}
