import { ApiKey } from "../modules/api-key/api-key.entity";
import { Extension } from "../modules/extension/extension.entity";
import { QueueAgent } from "../modules/queue/queue-agent.entity";
import { Queue } from "../modules/queue/queue.entity";
import { Tenant } from "../modules/tenant/tenant.entity";

export const entities = [Tenant, Extension, ApiKey, Queue, QueueAgent];
