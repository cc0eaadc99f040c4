import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import path from "node:path";
import { createExtension, createTenant } from "../support/factories";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { startRtpengine, type RtpengineProcess } from "../support/media";
import { buildServer } from "../support/process";
import { startTestServer, type TestServer } from "../support/server";
import { freeUdpPort } from "../support/sip";
import { TestPhone } from "../support/test-phone";
import { waitFor } from "../support/wait";

/**
 * `npm run media` as a process of its own (the compiled src/media/main.js): several instances on
 * one database, each answering its own calls, and SIGTERM ending the calls in progress with BYE.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

suite("the media application as its own process", () => {
  let ts: TestServer;
  let rtpengine: RtpengineProcess;
  const phones: TestPhone[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    rtpengine = await startRtpengine();
  }, 120_000);
  afterAll(async () => {
    for (const p of phones) await p.stop();
    await rtpengine?.stop();
    await ts?.stop();
  });

  async function spawnMedia(): Promise<{ port: number; child: ChildProcessWithoutNullStreams; output: () => string; exited: Promise<number | null> }> {
    const out = await buildServer();
    const port = await freeUdpPort();
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      DATABASE_URL: databaseUrl()!,
      DATABASE_SCHEMA: ts.schema!,
      REDIS_URL: redisUrl()!,
      REDIS_PREFIX: ts.redisPrefix!,
      MEDIA_SIP_LISTEN: `udp:127.0.0.1:${port}`,
      RTPENGINE_NG: `udp:127.0.0.1:${rtpengine.ngPort}`,
      ENGINE_SIP_URI: "sip:127.0.0.1:5060",
      LOG_LEVEL: "info",
    };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [path.join(out, "src/media/main.js")], { env });
    let text = "";
    child.stdout.on("data", (d: Buffer) => (text += d.toString()));
    child.stderr.on("data", (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await waitFor("the media application to listen", () => {
      if (child.exitCode !== null) throw new Error(`media exited ${child.exitCode}:\n${text}`);
      return text.includes("PBX media application listening");
    }, 60_000);
    return { port, child, output: () => text, exited };
  }

  it("two instances answer their own calls; SIGTERM ends a call in progress with BYE and exits 0", async () => {
    const [one, two] = [await spawnMedia(), await spawnMedia()];
    try {
      const tenant = await createTenant(ts);
      const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
      const headers = { "X-Pbx-App": "voicemail", "X-Pbx-Domain": tenant.sipDomain, "X-Pbx-Target": ext.extensionNumber };
      const calls: Awaited<ReturnType<TestPhone["call"]>>[] = [];
      for (const instance of [one, two]) {
        const phone = await TestPhone.start({ proxy: { host: "127.0.0.1", port: instance.port }, user: "5551", domain: tenant.sipDomain });
        phones.push(phone);
        const call = await phone.call(ext.extensionNumber, { headers, toneHz: 1000 });
        expect(call.status).toBe(200);
        calls.push(call);
      }
      await waitFor("the greeting to be heard on both calls", () => calls.every((c) => c.heard.some((s) => Math.abs(s) > 1000)), 20_000);
      one.child.kill("SIGTERM");
      await calls[0].waitEnded(15_000);
      expect(calls[0].endedBy).toBe("them");
      expect(await one.exited).toBe(0);
      expect(one.output()).toMatch(/shutting down: ending calls/);
      // The other instance's call goes on.
      expect(calls[1].ended).toBe(false);
      await calls[1].hangup();
    } finally {
      for (const instance of [one, two]) if (instance.child.exitCode === null) instance.child.kill("SIGTERM");
      await Promise.all([one.exited, two.exited]);
    }
  }, 180_000);
});
