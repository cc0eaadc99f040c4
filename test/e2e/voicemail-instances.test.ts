import { ExtensionVoicemailDocument, VoicemailEventsDocument } from "../graphql/generated";
import { requireReal } from "../support/env";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { toneWav } from "../../src/modules/voicemail/wav";
import { postVoicemail } from "./voicemail-support";

/**
 * Two instances on one PostgreSQL schema and one Redis: a message handed to one is played and
 * listed from the other (the audio lives in the database, not in a process), and the other's
 * voicemailEvents subscribers see it, like the other subscriptions across instances.
 */
const real = requireReal("redis") && requireReal("postgres");
const suite = real ? describe : describe.skip;

suite("voicemail across instances", () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer();
    b = await startTestServer({ shareSchemaOf: a });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it("a deposit on one instance is listed, played and announced on the other", async () => {
    const { tenant, viewerKey } = await tenantWithKeys(a);
    const extension = await createExtension(a, tenant.id, { voicemailEnabled: true });
    const ingestKey = await createKey(a, "INGEST", null);
    const sub = await subscribe(b, VoicemailEventsDocument, { extensionId: extension.id }, viewerKey);
    try {
      const audio = toneWav({ bytes: 300 * 1024 });
      const posted = await postVoicemail(a, ingestKey, { tenant_id: tenant.id, extension: extension.extensionNumber, message_id: "x-1" }, { bytes: audio });
      expect(posted.status).toBe(201);
      const event = await sub.next();
      expect(event.voicemailEvents).toMatchObject({ type: "NEW", message: { id: String(posted.body.data.id) }, summary: { unheard: 1, total: 1 } });
      const played = await b.http(posted.body.data.audio_url, { key: viewerKey });
      expect(Buffer.from(await played.arrayBuffer()).equals(audio)).toBe(true);
      expect((await b.ok(ExtensionVoicemailDocument, { id: extension.id }, viewerKey)).extension.voicemailSummary).toEqual({ unheard: 1, total: 1 });
      // A repeat sent to the other instance finds the stored message.
      const repeat = await postVoicemail(b, ingestKey, { tenant_id: tenant.id, extension: extension.extensionNumber, message_id: "x-1" }, { bytes: audio });
      expect(repeat.status).toBe(200);
      expect(repeat.body.data.id).toBe(posted.body.data.id);
    } finally {
      await sub.close();
    }
  });
});
