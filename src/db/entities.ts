import { ActiveCall } from "../modules/active-call/active-call.entity";
import { ApiKey } from "../modules/api-key/api-key.entity";
import { Cdr } from "../modules/cdr/cdr.entity";
import { Device } from "../modules/device/device.entity";
import { Extension } from "../modules/extension/extension.entity";
import { QueueAgent } from "../modules/queue/queue-agent.entity";
import { QueueCall } from "../modules/queue/queue-call.entity";
import { Queue } from "../modules/queue/queue.entity";
import { Tenant } from "../modules/tenant/tenant.entity";
import { VoicemailAudioChunk } from "../modules/voicemail/voicemail-audio-chunk.entity";
import { VoicemailGreeting } from "../modules/voicemail/voicemail-greeting.entity";
import { VoicemailMessage } from "../modules/voicemail/voicemail-message.entity";

export const entities = [Tenant, Extension, ApiKey, Queue, QueueAgent, Device, Cdr, ActiveCall, QueueCall, VoicemailMessage, VoicemailAudioChunk, VoicemailGreeting];
