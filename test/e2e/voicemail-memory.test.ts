import { createHash } from "node:crypto";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { toneWav } from "../../src/modules/voicemail/wav";
import { postVoicemail } from "./voicemail-support";

const MiB = 1024 * 1024;

/**
 * The audio download streams from the stored chunks: while 20 clients fetch one 10 MiB message at
 * once the server holds about one chunk per client, not 20 copies. The server runs in this process,
 * so its RSS is this process's; the clients hash what they receive instead of keeping it. The
 * figures are printed; the only bound is far below "a copy per client" (no timing is asserted).
 */
let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(async () => {
  await ts?.stop();
});

it("keeps the server's memory flat while 20 clients download a 10 MiB message at once (RSS printed)", async () => {
  // Built before any request, so no idle keep-alive connection times out meanwhile.
  const big = toneWav({ bytes: 10 * MiB });
  const digest = createHash("sha256").update(big).digest("hex");
  const { tenant, viewerKey } = await tenantWithKeys(ts);
  const extension = await createExtension(ts, tenant.id, { voicemailEnabled: true });
  const ingestKey = await createKey(ts, "INGEST", tenant.id);
  const posted = await postVoicemail(ts, ingestKey, { tenant_id: tenant.id, extension: extension.extensionNumber, message_id: "big" }, { bytes: big });
  expect(posted.status).toBe(201);
  expect(posted.body.data.size_bytes).toBe(10 * MiB);

  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const digests = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await ts.http(posted.body.data.audio_url, { key: viewerKey });
        expect(res.status).toBe(200);
        const hash = createHash("sha256");
        let length = 0;
        for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
          hash.update(piece);
          length += piece.length;
        }
        expect(length).toBe(big.length);
        return hash.digest("hex");
      }),
    );
    expect(new Set(digests)).toEqual(new Set([digest]));
  } finally {
    clearInterval(sampler);
  }
  const grew = (peak - before) / MiB;
  process.stdout.write(
    `voicemail download: 20 clients x 10 MiB at once, server RSS ${(before / MiB).toFixed(0)} MiB before, ${(peak / MiB).toFixed(0)} MiB at peak (+${grew.toFixed(0)} MiB)\n`,
  );
  // A copy per client would add 200 MiB; streaming adds about one 256 KiB chunk and socket buffers per client.
  expect(grew).toBeLessThan(120);
});
