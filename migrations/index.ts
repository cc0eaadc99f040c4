import { Foundation1764150000000 } from "./1764150000000-Foundation";
import { Queues1764150100000 } from "./1764150100000-Queues";
import { DeferQueueAgentExtensionFk1764150150000 } from "./1764150150000-DeferQueueAgentExtensionFk";
import { Devices1764150200000 } from "./1764150200000-Devices";
import { CallRecords1764150300000 } from "./1764150300000-CallRecords";
import { QueueCalls1764150400000 } from "./1764150400000-QueueCalls";
import { SipCredentials1764200000000 } from "./1764200000000-SipCredentials";
import { Voicemail1764400000000 } from "./1764400000000-Voicemail";
import { EventLog1764500000000 } from "./1764500000000-EventLog";
import { AuditTrail1764600000000 } from "./1764600000000-AuditTrail";
import { QueueAgentPausedAt1764850000000 } from "./1764850000000-QueueAgentPausedAt";
import { CdrStatsIndex1764900000000 } from "./1764900000000-CdrStatsIndex";
import { QueueAgentUnpausedAt1765000000000 } from "./1765000000000-QueueAgentUnpausedAt";
import { EngineSync1765200000000 } from "./1765200000000-EngineSync";
import { Trunks1765210000000 } from "./1765210000000-Trunks";
import { CallTrunkColumns1765220000000 } from "./1765220000000-CallTrunkColumns";
import { CallHandling1765300000000 } from "./1765300000000-CallHandling";
import { CallHandlingEngine1765300100000 } from "./1765300100000-CallHandlingEngine";
import { VoicemailGreeting1765400000000 } from "./1765400000000-VoicemailGreeting";
import { QueueCallSettings1765400100000 } from "./1765400100000-QueueCallSettings";
import { QueueCallCaller1765500000000 } from "./1765500000000-QueueCallCaller";
import { ExternalDestinations1765610000000 } from "./1765610000000-ExternalDestinations";
import { RegisteredTrunkInbound1765610100000 } from "./1765610100000-RegisteredTrunkInbound";

/** Every migration, in order. Listed explicitly so the same list works from TypeScript (tests) and compiled JS. */
export const migrations = [Foundation1764150000000, Queues1764150100000, DeferQueueAgentExtensionFk1764150150000, Devices1764150200000, CallRecords1764150300000, QueueCalls1764150400000, SipCredentials1764200000000, Voicemail1764400000000, EventLog1764500000000, AuditTrail1764600000000, QueueAgentPausedAt1764850000000, CdrStatsIndex1764900000000, QueueAgentUnpausedAt1765000000000, EngineSync1765200000000, Trunks1765210000000, CallTrunkColumns1765220000000, CallHandling1765300000000, CallHandlingEngine1765300100000, VoicemailGreeting1765400000000, QueueCallSettings1765400100000, QueueCallCaller1765500000000, ExternalDestinations1765610000000, RegisteredTrunkInbound1765610100000];
