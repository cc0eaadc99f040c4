import { audioPath } from "../modules/voicemail/voicemail.resolver";
import type { VoicemailRow } from "../modules/voicemail/voicemail.service";

/** The REST representation of a voicemail message (Laravel API resource, snake_case); never its audio. */
export interface VoicemailResource {
  id: number;
  tenant_id: number;
  extension_id: number;
  message_id: string;
  call_id: string | null;
  caller_number: string | null;
  caller_name: string | null;
  received_at: string;
  duration_seconds: number;
  heard: boolean;
  content_type: string;
  size_bytes: number;
  audio_url: string;
  created_at: string;
  updated_at: string;
}

export function voicemailResource(row: VoicemailRow): VoicemailResource {
  return {
    id: Number(row.id),
    tenant_id: Number(row.tenantId),
    extension_id: Number(row.extensionId),
    message_id: row.messageId,
    call_id: row.callId,
    caller_number: row.callerNumber,
    caller_name: row.callerName,
    received_at: new Date(row.receivedAt).toISOString(),
    duration_seconds: row.durationSeconds,
    heard: row.heard,
    content_type: row.contentType,
    size_bytes: row.sizeBytes,
    audio_url: audioPath(row.id),
    created_at: new Date(row.createdAt).toISOString(),
    updated_at: new Date(row.updatedAt).toISOString(),
  };
}
