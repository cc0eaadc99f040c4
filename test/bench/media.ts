/**
 * The media application under load: concurrent voicemail calls, each a real SIP/RTP caller (the
 * test phone) sending a 1 kHz tone to the media application (dist/src/media/main.js, its own
 * process) through Debian's rtpengine in userspace, each recording checked afterwards (stored, the
 * expected length, 1 kHz throughout).
 *
 *   DATABASE_URL=… REDIS_URL=… npm run bench:media -- [--calls 5,10,20,40] [--seconds 4]
 *
 * For each round it prints: the calls, how many recordings were correct, the CPU the media
 * application and rtpengine used per call (CPU seconds per call-minute of audio), and the delay
 * from the caller's 200 OK to the first packet of the greeting (p50 / max). Rounds stop at the
 * first one with a wrong recording. Keep it short on a shared machine: a round lasts about
 * `seconds` + 3 s.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { readWav, toneWav } from "../../src/modules/voicemail/wav";
import { blocksWithTone } from "../support/goertzel";
import { startRtpengine } from "../support/media";
import { freeUdpPort, stopProcess, waitFor } from "../support/sip";
import { TestPhone } from "../support/test-phone";
import { startBenchServer } from "./bench-server";

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  // utime and stime, in clock ticks (100 per second on Linux)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ strict: true, options: { calls: { type: "string", default: "5,10,20,40" }, seconds: { type: "string", default: "4" } } });
  const rounds = values.calls.split(",").map(Number);
  const seconds = Number(values.seconds);
  const server = await startBenchServer("media");
  const rtpengine = await startRtpengine();
  const rtpPid = rtpengine.pid;
  const sipPort = await freeUdpPort();
  const media = spawn(process.execPath, [path.resolve(__dirname, "../../src/media/main.js")], {
    env: {
      ...process.env,
      DATABASE_SCHEMA: server.schema,
      REDIS_PREFIX: server.prefix,
      MEDIA_SIP_LISTEN: `udp:127.0.0.1:${sipPort}`,
      RTPENGINE_NG: `udp:127.0.0.1:${rtpengine.ngPort}`,
      ENGINE_SIP_URI: "sip:127.0.0.1:5060",
      LOG_LEVEL: "warn",
      SECRET_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  media.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const api = async (pathname: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${server.port}${pathname}`, { ...init, headers: { authorization: `Bearer ${server.adminKey}`, ...(init.headers ?? {}) } });
  const gql = async (query: string, variables: Record<string, unknown>) => ((await (await api("/graphql", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) })).json()) as { data: any }).data;
  try {
    await waitFor("the media application", () => out.includes("listening"), 60_000);
    const { createTenant: tenant } = await gql(`mutation($i: CreateTenantInput!) { createTenant(input: $i) { id sipDomain } }`, {
      i: { name: "Bench", slug: `bench-${randomBytes(3).toString("hex")}`, sipDomain: `bench-${randomBytes(3).toString("hex")}.pbx.test`, maxExtensions: 1000 },
    });
    process.stdout.write(`load before: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} (${os.cpus().length} cores)\n`);
    process.stdout.write("calls  correct  media CPU s/call-min  rtpengine CPU s/call-min  greeting delay p50/max ms\n");
    for (const n of rounds) {
      const { createExtension: ext } = await gql(`mutation($i: CreateExtensionInput!) { createExtension(input: $i) { id extensionNumber } }`, {
        i: { tenantId: tenant.id, extensionNumber: String(5000 + n), secret: "bench-secret-long", voicemailEnabled: true },
      });
      await api(`/api/extensions/${ext.id}/voicemail/greeting`, { method: "PUT", headers: { "content-type": "audio/wav" }, body: toneWav({ seconds: 0.5, frequency: 400 }) });
      const phones = await Promise.all(Array.from({ length: n }, (_, i) => TestPhone.start({ proxy: { host: "127.0.0.1", port: sipPort }, user: String(9000 + i), domain: tenant.sipDomain })));
      const cpu0 = [cpuSeconds(media.pid!), cpuSeconds(rtpPid)];
      const headers = { "X-Pbx-App": "voicemail", "X-Pbx-Domain": tenant.sipDomain, "X-Pbx-Target": ext.extensionNumber };
      const delays: number[] = [];
      await Promise.all(
        phones.map(async (phone) => {
          const call = await phone.call(ext.extensionNumber, { headers, toneHz: 1000 });
          const answered = Date.now();
          await waitFor("the greeting's first packet", () => call.heard.length > 0, 20_000, 5);
          delays.push(Date.now() - answered);
          await waitFor("the beep", () => blocksWithTone(call.heard, 1200) >= 2, 30_000, 20);
          const started = Date.now();
          await waitFor("the message", () => Date.now() - started >= seconds * 1000, seconds * 1000 + 5000, 50);
          await call.hangup();
        }),
      );
      await waitFor("every recording stored", async () => {
        const { rows: [{ c }] } = await server.db.query(`SELECT count(*)::int AS c FROM ${server.schema}.voicemail_message WHERE extension_id = $1`, [Number(ext.id)]);
        return c === n || undefined;
      }, 20_000).catch(() => undefined);
      const stored: Array<{ id: number; duration: number }> = (
        await server.db.query(`SELECT id, duration_seconds AS duration FROM ${server.schema}.voicemail_message WHERE extension_id = $1`, [Number(ext.id)])
      ).rows;
      const cpu1 = [cpuSeconds(media.pid!), cpuSeconds(rtpPid)];
      let correct = 0;
      for (const row of stored) {
        const wav = Buffer.from(await (await api(`/api/voicemail/${row.id}/audio`)).arrayBuffer());
        const info = readWav(wav)!;
        const samples = new Int16Array(wav.buffer.slice(wav.byteOffset + info.dataOffset, wav.byteOffset + info.dataOffset + info.dataBytes));
        const blocks = Math.floor(samples.length / 800);
        if (Math.abs(row.duration - seconds) <= 1 && blocksWithTone(samples, 1000) >= blocks * 0.8) correct++;
      }
      const callMinutes = (n * (seconds + 1)) / 60;
      delays.sort((a, b) => a - b);
      process.stdout.write(
        `${String(n).padStart(5)}  ${String(correct).padStart(7)}  ${((cpu1[0] - cpu0[0]) / callMinutes).toFixed(2).padStart(20)}  ${((cpu1[1] - cpu0[1]) / callMinutes).toFixed(2).padStart(24)}  ${delays[Math.floor(delays.length / 2)]}/${delays[delays.length - 1]}\n`,
      );
      for (const p of phones) await p.stop();
      if (correct < n) break;
    }
    process.stdout.write(`load after: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
  } finally {
    await stopProcess(media);
    await rtpengine.stop();
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
