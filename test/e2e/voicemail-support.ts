import type { TestServer } from "../support/server";

export interface VoicemailFields {
  domain?: string;
  tenant_id?: string;
  extension?: string;
  message_id?: string;
  call_id?: string;
  caller_number?: string;
  caller_name?: string;
  duration_seconds?: string;
  received_at?: string;
  [field: string]: string | undefined;
}

export interface AudioPart {
  bytes: Buffer;
  type?: string;
  filename?: string;
}

/** Posts a voicemail as the engine would: multipart/form-data with the fields and (unless null) one audio part. */
export async function postVoicemail(ts: TestServer, key: string, fields: VoicemailFields, audio: AudioPart | AudioPart[] | null) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) form.append(name, value);
  for (const part of audio === null ? [] : Array.isArray(audio) ? audio : [audio]) {
    form.append("audio", new Blob([part.bytes], { type: part.type ?? "audio/wav" }), part.filename ?? "message.wav");
  }
  const res = await ts.http("/api/voicemail", { key, method: "POST", body: form });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as any };
}

/** Rows of the two voicemail tables, to show that a refusal stored nothing. */
export async function storedCounts(ts: TestServer): Promise<{ messages: number; chunks: number }> {
  const [row] = await ts.server.db.dataSource.query(
    `SELECT (SELECT count(*)::int FROM voicemail_message) AS messages, (SELECT count(*)::int FROM voicemail_audio_chunk) AS chunks`,
  );
  return row;
}
