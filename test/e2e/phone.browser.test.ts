import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { AddQueueAgentDocument, CreateExtensionDocument, CreateQueueDocument, ExtensionDevicesDocument, UpdateCallHandlingDocument, UpdateExtensionDocument } from "../graphql/generated";
import { toneWav } from "../../src/modules/voicemail/wav";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { CHROMIUM, LISTEN_IN_PAGE, phoneChromiumArgs, readWav } from "../support/browser-audio";
import { blocksWithTone, toneShare } from "../support/goertzel";
import { startMedia, startRtpengine, type MediaInstance, type RtpengineProcess } from "../support/media";
import { startTestServer, type TestServer } from "../support/server";
import { answerCall, createEngineRole, freeTcpPort, freeUdpPort, startKamailio, startPhone, type EngineRole, type Kamailio, type Phone } from "../support/sip";
import { TestPhone } from "../support/test-phone";
import { waitFor } from "../support/wait";

/**
 * The softphone page (contract §15) in a real browser talking to a real desk phone: Debian's
 * Chromium (playwright-core, no browser download) opens GET /phone, registers over the shipped
 * Kamailio's WebSocket listener, and calls a baresip phone through rtpengine (WebRTC's ICE and
 * DTLS-SRTP on the browser's side, plain RTP on the phone's). The browser's fake microphone plays
 * 1 kHz, the desk phone 1.6 kHz; each side must hear the other's tone (Goertzel).
 */
const SHOTS = path.resolve(__dirname, "../../test-results");

function onPath(binary: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${binary}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function toolsAvailable(): boolean {
  const missing = [
    ...(fs.existsSync(CHROMIUM) ? [] : [`chromium (${CHROMIUM})`]),
    ...["kamailio", "rtpengine", "baresip"].filter((b) => !onPath(b)),
  ];
  if (missing.length === 0) return true;
  if (process.env.CI === "true" || process.env.REQUIRE_REAL_SERVICES === "1") {
    throw new Error(`The softphone browser test needs ${missing.join(", ")} (Debian packages chromium, kamailio, rtpengine-daemon, baresip).`);
  }
  process.stderr.write(`SKIPPED: the softphone browser test needs ${missing.join(", ")}; it did not run.\n`);
  return false;
}

const real = requireReal("postgres") && requireReal("redis") && toolsAvailable();
const suite = real ? describe : describe.skip;

suite("the softphone page in Chromium, through Kamailio and rtpengine", () => {
  let ts: TestServer;
  let role: EngineRole;
  let rtpengine: RtpengineProcess;
  let media: MediaInstance;
  let kamailio: Kamailio;
  let browser: Browser;
  let desk: Phone;
  let dir: string;
  let wsUrl: string;
  let tenant: { id: string; sipDomain: string };
  let browserExt: { id: string };
  const problems: string[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-phone-page-"));
    fs.mkdirSync(SHOTS, { recursive: true });
    fs.mkdirSync(path.join(dir, "recordings"));
    // the browser's microphone: 1 kHz (Chromium loops the file); the desk phone's: 1.6 kHz for longer than any call
    fs.writeFileSync(path.join(dir, "mic-1000.wav"), toneWav({ seconds: 10, sampleRate: 48000, frequency: 1000 }));
    fs.writeFileSync(path.join(dir, "desk-1600.wav"), toneWav({ seconds: 120, sampleRate: 8000, frequency: 1600 }));
    const wsPort = await freeTcpPort();
    wsUrl = `ws://127.0.0.1:${wsPort}`;
    ts = await startTestServer({ env: { PHONE_WS_URL: wsUrl } });
    role = await createEngineRole(databaseUrl()!, ts.schema);
    rtpengine = await startRtpengine();
    // the media application too: the page shows the extension's voicemail count (message-summary)
    const mediaPort = await freeUdpPort();
    kamailio = await startKamailio({
      databaseUrl: role.url,
      redisUrl: redisUrl()!,
      streamKey: `${ts.redisPrefix}pbx:events`,
      defines: [`WS_LISTEN=tcp:127.0.0.1:${wsPort}`, `RTPENGINE_NG="udp:127.0.0.1:${rtpengine.ngPort}"`, `MEDIA_URI="sip:127.0.0.1:${mediaPort}"`],
    });
    media = await startMedia(ts, rtpengine, { ENGINE_SIP_URI: `sip:127.0.0.1:${kamailio.port}` }, mediaPort);
    tenant = await createTenant(ts);
    browserExt = (await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1001", secret: "browser-secret-1001", displayName: "Browser" } })).createExtension;
    await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1002", secret: "desk-secret-1002", displayName: "Desk" } });
    desk = await startPhone(kamailio.port, "1002", tenant.sipDomain, "desk-secret-1002", "Desk", {
      play: path.join(dir, "desk-1600.wav"),
      recordDir: path.join(dir, "recordings"),
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: phoneChromiumArgs(path.join(dir, "mic-1000.wav")),
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await desk?.stop();
    await media?.stop();
    await kamailio?.stop();
    await rtpengine?.stop();
    await role?.drop();
    await ts?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function openPage(width: number, height: number): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height } });
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("request", (request) => {
      // everything the page loads comes from the product itself (and the WebSocket goes to the engine)
      const url = new URL(request.url());
      if (url.origin !== new URL(ts.url).origin) problems.push(`loaded from elsewhere: ${request.url()}`);
    });
    await page.goto(`${ts.url}/phone`);
    return page;
  }

  async function signIn(page: Page, secret: string, number = "1001") {
    await page.fill("#domain", tenant.sipDomain);
    await page.fill("#number", number);
    await page.fill("#secret", secret);
    await page.click("#login button[type=submit]");
  }

  /** Blocks of what the page hears in which `hz` dominates. */
  async function pageHears(page: Page, hz: number): Promise<number> {
    const heard = (await page.evaluate(LISTEN_IN_PAGE)) as { rate: number; blocks: number[][] } | null;
    if (!heard) return 0;
    return heard.blocks.filter((block) => toneShare(block, hz, heard.rate) > 0.5).length;
  }

  /** The newest recording of the desk phone (what it heard in its last call), once written. */
  const recordings = () => fs.readdirSync(path.join(dir, "recordings")).filter((f) => f.endsWith("-dec.wav"));

  const devices = async () => (await ts.ok(ExtensionDevicesDocument, { id: browserExt.id })).extension;

  it("refuses a wrong secret with a clear error, registers nothing, and never sends the secret to the API", async () => {
    const page = await openPage(1280, 800);
    const toApi: string[] = [];
    page.on("request", (request) => {
      if (new URL(request.url()).origin === new URL(ts.url).origin) toApi.push(`${request.url()} ${request.postData() ?? ""}`);
    });
    // the engine's address comes from PHONE_WS_URL
    expect(await page.inputValue("#ws")).toBe(wsUrl);
    await signIn(page, "not-the-secret");
    await page.waitForSelector('#reg[data-state="failed"]', { timeout: 15_000 });
    expect(await page.textContent("#login-error")).toMatch(/Registration refused: 403 wrong extension number or secret/);
    expect(await page.isVisible("#phone")).toBe(false);
    expect((await devices())?.devices ?? []).toEqual([]);
    expect(toApi.join("\n")).not.toContain("not-the-secret");
    await page.close();
  }, 60_000);

  it("registers (a WS device in the product), calls the desk phone: the phone hears 1 kHz, the page hears 1.6 kHz; the page hangs up", async () => {
    const page = await openPage(1280, 800);
    await signIn(page, "browser-secret-1001");
    await page.waitForSelector('#reg[data-state="registered"]', { timeout: 15_000 });
    expect(await page.textContent("#aor")).toBe(`1001@${tenant.sipDomain}`);
    expect(await page.textContent("#ws-shown")).toBe(wsUrl);
    const registered = await waitFor("the browser's device in the product", async () => {
      const ext = await devices();
      return ext?.devices?.find((d: { registered: boolean }) => d.registered);
    }, 10_000);
    expect(registered).toMatchObject({ transport: "WS", registered: true, userAgent: "pbx-phone (SIP.js)" });
    await page.screenshot({ path: path.join(SHOTS, "phone.png") });

    const before = recordings().length;
    // typed and keyed: "100" typed, "2" from the keypad
    await page.fill("#target", "100");
    await page.click('#pad button[data-key="2"]');
    expect(await page.inputValue("#target")).toBe("1002");
    await page.click("#call-button");
    await waitFor("the desk phone to ring", () => /Incoming call|ringing/i.test(desk.output()) || undefined, 15_000);
    await answerCall(desk);
    await page.waitForSelector('#call-state[data-state="connected"]', { timeout: 15_000 });
    await page.screenshot({ path: path.join(SHOTS, "phone-in-call.png") });

    // the page hears the desk phone's 1.6 kHz (not its own 1 kHz)
    const blocks = await waitFor("1.6 kHz in the page", async () => {
      const n = await pageHears(page, 1600);
      return n >= 6 ? n : undefined;
    }, 20_000, 200);
    expect(blocks).toBeGreaterThanOrEqual(6);

    // DTMF during the call does not break it; mute is a toggle
    await page.click('#pad button[data-key="5"]');
    expect(await page.textContent("#dtmf-sent")).toContain("5");
    await page.click("#mute");
    expect(await page.getAttribute("#mute", "aria-pressed")).toBe("true");
    await page.click("#mute");
    expect(await page.getAttribute("#mute", "aria-pressed")).toBe("false");

    // hold and resume: re-INVITEs through rtpengine, acknowledged by the desk phone
    await page.click("#hold");
    await page.waitForSelector('#call-state[data-state="held"]', { timeout: 10_000 });
    await page.click("#hold");
    await page.waitForSelector('#call-state[data-state="connected"]', { timeout: 10_000 });

    await page.click("#hangup");
    await page.waitForSelector("#call", { state: "hidden", timeout: 10_000 });
    await waitFor("the desk phone to see the hang-up", () => /closed|terminated|Call with .* terminated/i.test(desk.output()) || undefined, 10_000);

    // the desk phone's recording of the call holds the browser's 1 kHz
    const file = await waitFor("the desk phone's recording", () => (recordings().length > before ? recordings().sort().at(-1) : undefined), 10_000);
    const { samples, rate } = readWav(path.join(dir, "recordings", file));
    expect(blocksWithTone(samples, 1000, 0.5, rate)).toBeGreaterThanOrEqual(10);

    // signing out unregisters: the product no longer shows the browser registered
    await page.click("#signout");
    await page.waitForSelector("#login", { state: "visible", timeout: 10_000 });
    await waitFor("the browser's device to be unregistered", async () => ((await devices())?.registered === false ? true : undefined), 10_000);
    await page.close();
  }, 120_000);

  it("rings on a call from the desk phone: declined, then answered with audio both ways; the desk phone hangs up (phone-sized screen)", async () => {
    const page = await openPage(390, 844);
    await signIn(page, "browser-secret-1001");
    await page.waitForSelector('#reg[data-state="registered"]', { timeout: 15_000 });

    await desk.command("/dial 1001");
    await page.waitForSelector("#incoming", { state: "visible", timeout: 15_000 });
    expect(await page.textContent("#incoming-from")).toContain("1002");
    await page.click("#decline");
    await page.waitForSelector("#incoming", { state: "hidden", timeout: 10_000 });
    // declined (603): the engine's call handling treats it as busy and, with no voicemail, answers the caller 486
    await waitFor("the desk phone to be declined", () => /session closed: 486 Busy Here/.test(desk.output()) || undefined, 10_000);

    const before = recordings().length;
    await desk.command("/dial 1001");
    await page.waitForSelector("#incoming", { state: "visible", timeout: 15_000 });
    await page.screenshot({ path: path.join(SHOTS, "phone-390-incoming.png") });
    await page.click("#answer");
    await page.waitForSelector('#call-state[data-state="connected"]', { timeout: 15_000 });
    const blocks = await waitFor("1.6 kHz in the page", async () => {
      const n = await pageHears(page, 1600);
      return n >= 6 ? n : undefined;
    }, 20_000, 200);
    expect(blocks).toBeGreaterThanOrEqual(6);
    await page.screenshot({ path: path.join(SHOTS, "phone-390-call.png") });

    await desk.command("/hangup");
    await page.waitForSelector("#call", { state: "hidden", timeout: 10_000 });
    const file = await waitFor("the desk phone's recording", () => (recordings().length > before ? recordings().sort().at(-1) : undefined), 10_000);
    const { samples, rate } = readWav(path.join(dir, "recordings", file));
    expect(blocksWithTone(samples, 1000, 0.5, rate)).toBeGreaterThanOrEqual(10);

    // the page is laid out for the width: nothing wider than the screen
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await page.click("#signout");
    await waitFor("the browser's device to be unregistered", async () => ((await devices())?.registered === false ? true : undefined), 10_000);
    await page.close();
    expect(problems).toEqual([]);
    expect(kamailio.output()).not.toMatch(/\b(ERROR|CRITICAL):/);
  }, 120_000);

  it("shows the extension's unheard voicemail count (message-summary) and follows it; *98 from the page plays the newest message", async () => {
    await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1003", secret: "mailbox-secret-1003", voicemailEnabled: true } });
    const page = await openPage(390, 844);
    await signIn(page, "mailbox-secret-1003", "1003");
    await page.waitForSelector('#reg[data-state="registered"]', { timeout: 15_000 });
    await page.waitForSelector('#mwi[data-count="0"]', { timeout: 15_000 });
    expect(await page.textContent("#mwi")).toBe("Voicemail: no new messages");
    for (const id of ["m-1", "m-2"]) {
      const form = new FormData();
      for (const [k, v] of Object.entries({ domain: tenant.sipDomain, extension: "1003", message_id: id, duration_seconds: "6" })) form.append(k, v);
      form.append("audio", new Blob([toneWav({ seconds: 6, frequency: 700 })], { type: "audio/wav" }), "m.wav");
      expect((await ts.http("/api/voicemail", { method: "POST", body: form })).status).toBe(201);
    }
    await page.waitForSelector('#mwi[data-count="2"]', { timeout: 15_000 });
    expect(await page.textContent("#mwi")).toBe("Voicemail: 2 new messages");
    await page.screenshot({ path: path.join(SHOTS, "phone-390-voicemail.png") });

    // *98 from the page: the media application answers a WebRTC caller (its answer turned into
    // DTLS-SRTP by the engine), the page hears the newest message's 700 Hz, and once it has been
    // played the count drops
    await page.fill("#target", "*98");
    await page.click("#call-button");
    await page.waitForSelector('#call-state[data-state="connected"]', { timeout: 15_000 });
    const blocks = await waitFor("700 Hz in the page", async () => {
      const n = await pageHears(page, 700);
      return n >= 6 ? n : undefined;
    }, 20_000, 200);
    expect(blocks).toBeGreaterThanOrEqual(6);
    // the 6 s message, the beep, 1.5 s for a "7": then it is marked heard
    await page.waitForSelector('#mwi[data-count="1"]', { timeout: 30_000 }).catch(async (error) => {
      throw new Error(`${error}\nmwi: ${await page.textContent("#mwi")}; call: ${await page.textContent("#call-state")} ${await page.isVisible("#call")}`);
    });
    await page.click("#hangup");
    await page.waitForSelector("#call", { state: "hidden", timeout: 10_000 });
    await page.click("#signout");
    await page.close();
  }, 60_000);

  it("rings one extension on a browser and a desk phone at once (one offer per branch): answered on either, audio both ways; a queue's offer and voicemail too", async () => {
    // 1005 is registered twice: in the page (WebRTC, 1 kHz) and on a baresip desk phone (plain RTP,
    // 1.2 kHz). Each branch of the fork gets its own rtpengine offer (via-branch): the browser's with
    // ICE and DTLS-SRTP, the desk phone's plain. The caller is the 1.6 kHz desk phone 1002, then a
    // phone behind NAT (800 Hz), whose call has every branch anchored; then that phone calls a queue
    // whose agent is 1005, and 1005 once more, unanswered, to its voicemail.
    const twiceExt = (await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1005", secret: "twice-secret-1005", displayName: "Twice" } })).createExtension;
    await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1006", secret: "natted-secret-1006" } });
    const deskDir = path.join(dir, "recordings-1005");
    fs.mkdirSync(deskDir);
    fs.writeFileSync(path.join(dir, "desk-1200.wav"), toneWav({ seconds: 120, sampleRate: 8000, frequency: 1200 }));
    const natted = await TestPhone.start({ proxy: { host: "127.0.0.1", port: kamailio.port }, user: "1006", domain: tenant.sipDomain, password: "natted-secret-1006", natAddress: "192.168.77.11" });
    const page = await openPage(1280, 800);
    let second: Phone | undefined;
    try {
      expect(await natted.register()).toBe(200);
      await signIn(page, "twice-secret-1005", "1005");
      await page.waitForSelector('#reg[data-state="registered"]', { timeout: 15_000 });
      // registered after the browser, so its branch is offered last: with one offer for all branches,
      // the call took the desk phone's plain profile for the browser too (its re-INVITEs got 488)
      const twice = (second = await startPhone(kamailio.port, "1005", tenant.sipDomain, "twice-secret-1005", "Twice desk", { play: path.join(dir, "desk-1200.wav"), recordDir: deskDir }));
      const secondRecordings = () => fs.readdirSync(deskDir).filter((f) => f.endsWith("-dec.wav"));
      const secondRings = () => (twice.output().match(/Incoming call/gi) ?? []).length;
      /** The newest recording in `list()` once there is one more than `before`: the tone's 100 ms blocks in it. */
      const recorded = async (what: string, folder: string, list: () => string[], before: number, hz: number) => {
        const file = await waitFor(what, () => (list().length > before ? list().sort().at(-1) : undefined), 10_000);
        const wav = readWav(path.join(folder, file));
        return blocksWithTone(wav.samples, hz, 0.5, wav.rate);
      };
      /** The newest recording in `list()` once there is one more than `before` holding `seconds` of audio. */
      const recording = (what: string, folder: string, list: () => string[], before: number, seconds: number) =>
        waitFor(what, () => {
          const file = list().length > before ? list().sort().at(-1) : undefined;
          return file && fs.statSync(path.join(folder, file)).size >= 44 + seconds * 16_000 ? file : undefined;
        }, 15_000, 100);
      /** Both of 1005's phones ring for `dial()`; resolves once they do, with what `dial()` gave (in an object: not awaited). */
      const bothRing = async <T>(dial: () => T): Promise<{ placed: T }> => {
        const rang = secondRings();
        const placed = dial();
        await page.waitForSelector("#incoming", { state: "visible", timeout: 15_000 });
        await waitFor("1005's desk phone to ring", () => secondRings() > rang || undefined, 15_000);
        return { placed };
      };
      const recordingsDir = path.join(dir, "recordings");

      // 1. 1002 calls, the browser answers: the page hears 1.6 kHz, 1002 hears 1 kHz
      let before = recordings().length;
      await bothRing(() => desk.command("/dial 1005"));
      await page.click("#answer");
      await page.waitForSelector('#call-state[data-state="connected"]', { timeout: 15_000 });
      expect(await waitFor("1.6 kHz in the page", async () => ((await pageHears(page, 1600)) >= 6 ? true : undefined), 20_000, 200)).toBe(true);
      await desk.command("/hangup");
      await page.waitForSelector("#call", { state: "hidden", timeout: 10_000 });
      expect(await recorded("1002's recording", recordingsDir, recordings, before, 1000)).toBeGreaterThanOrEqual(10);

      // 2. 1002 calls, the desk phone answers (the page stops ringing): 1005's desk hears 1.6 kHz, 1002 hears 1.2 kHz
      before = recordings().length;
      let secondBefore = secondRecordings().length;
      await bothRing(() => desk.command("/dial 1005"));
      await twice.command("/accept");
      await page.waitForSelector("#incoming", { state: "hidden", timeout: 10_000 });
      // both desk phones record the call for 2 s (8 kHz, 16 bits) before it ends
      await recording("1002's recording to grow", recordingsDir, recordings, before, 2);
      await recording("1005's desk recording to grow", deskDir, secondRecordings, secondBefore, 2);
      await desk.command("/hangup");
      expect(await recorded("1002's recording", recordingsDir, recordings, before, 1200)).toBeGreaterThanOrEqual(10);
      expect(await recorded("1005's desk recording", deskDir, secondRecordings, secondBefore, 1600)).toBeGreaterThanOrEqual(10);

      // 3. a NATed phone calls (every branch anchored), the browser answers: 800 Hz in the page, 1 kHz at the phone
      let { placed } = await bothRing(() => natted.call("1005", { toneHz: 800 }));
      await page.click("#answer");
      let call = await placed;
      expect(call.status).toBe(200);
      expect(await waitFor("800 Hz in the page", async () => ((await pageHears(page, 800)) >= 6 ? true : undefined), 20_000, 200)).toBe(true);
      await waitFor("1 kHz at the NATed phone", () => blocksWithTone(call.heard, 1000) >= 10 || undefined, 15_000, 100);
      // a re-INVITE of the caller reaches the browser as WebRTC (the answered branch's profile, not the
      // profile of whichever branch was offered last), and the call goes on both ways
      expect(await natted.reinvite(call)).toBe(200);
      const heardBefore = call.heard.length;
      await waitFor("1 kHz at the NATed phone after the re-INVITE", () => blocksWithTone(call.heard.slice(heardBefore), 1000) >= 10 || undefined, 15_000, 100);
      expect(await waitFor("800 Hz in the page after the re-INVITE", async () => ((await pageHears(page, 800)) >= 6 ? true : undefined), 20_000, 200)).toBe(true);
      await call.hangup();
      await page.waitForSelector("#call", { state: "hidden", timeout: 10_000 });

      // 4. the NATed phone again, the desk phone answers: 800 Hz on 1005's desk, 1.2 kHz at the NATed phone
      secondBefore = secondRecordings().length;
      ({ placed } = await bothRing(() => natted.call("1005", { toneHz: 800 })));
      await twice.command("/accept");
      call = await placed;
      expect(call.status).toBe(200);
      await page.waitForSelector("#incoming", { state: "hidden", timeout: 10_000 });
      await waitFor("1.2 kHz at the NATed phone", () => blocksWithTone(call.heard, 1200) >= 10 || undefined, 15_000, 100);
      await recording("1005's desk recording to grow", deskDir, secondRecordings, secondBefore, 2);
      await call.hangup();
      expect(await recorded("1005's desk recording", deskDir, secondRecordings, secondBefore, 800)).toBeGreaterThanOrEqual(10);

      // 5. a queue with 1005 as its agent: the media application's offer goes through the engine to
      //    both phones; the browser answers (WebRTC on its side): 800 Hz in the page, 1 kHz at the caller
      const { createQueue: queue } = await ts.ok(CreateQueueDocument, { input: { tenantId: tenant.id, name: "Support", number: "700" } });
      await ts.ok(AddQueueAgentDocument, { queueId: queue.id, extensionId: twiceExt.id });
      ({ placed } = await bothRing(() => natted.call("700", { toneHz: 800 })));
      call = await placed;
      expect(call.status).toBe(200);
      const onHold = call.heard.length;
      await page.click("#answer");
      await page.waitForSelector('#call-state[data-state="connected"]', { timeout: 15_000 });
      expect(await waitFor("800 Hz in the page", async () => ((await pageHears(page, 800)) >= 6 ? true : undefined), 20_000, 200)).toBe(true);
      await waitFor("1 kHz at the queue's caller", () => blocksWithTone(call.heard.slice(onHold), 1000) >= 10 || undefined, 15_000, 100);
      await call.hangup();
      await page.waitForSelector("#call", { state: "hidden", timeout: 10_000 });

      // 6. the NATed phone calls 1005's desk phone (the page signed out), nobody answers within 5 s:
      //    voicemail. The branch that rang is deleted in rtpengine when its 487 comes in; the media
      //    application's offer, made in the failure route as a branch of its own, is not: the caller
      //    hears the greeting and the beep (1.2 kHz, 0.4 s)
      await page.click("#signout");
      await waitFor("the browser's binding to go", async () => ((await ts.ok(ExtensionDevicesDocument, { id: twiceExt.id })).extension?.devices?.filter((d: { registered: boolean }) => d.registered).length === 1 ? true : undefined), 10_000);
      await ts.ok(UpdateExtensionDocument, { id: twiceExt.id, input: { voicemailEnabled: true } });
      await ts.ok(UpdateCallHandlingDocument, { extensionId: twiceExt.id, input: { ringSeconds: 5 } });
      const rang = secondRings();
      const voicemail = natted.call("1005", { toneHz: 800 });
      await waitFor("1005's desk phone to ring", () => secondRings() > rang || undefined, 15_000);
      call = await voicemail;
      expect(call.status).toBe(200);
      await waitFor("the voicemail beep at the caller", () => blocksWithTone(call.heard, 1200) >= 3 || undefined, 30_000, 100);
      await call.hangup();
      expect(kamailio.output()).not.toMatch(/\b(ERROR|CRITICAL):/);
    } finally {
      await page.click("#signout").catch(() => undefined);
      await page.close();
      await natted.stop();
      await second?.stop();
    }
  }, 180_000);

  it("anchors a NATed desk phone's media too: it claims a private address, rtpengine finds it at its real source (both ways)", async () => {
    await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1004", secret: "natted-secret-1004" } });
    // 192.0.2.x (TEST-NET-1) would not do: nathelper's private-address test wants RFC 1918
    const natted = await TestPhone.start({ proxy: { host: "127.0.0.1", port: kamailio.port }, user: "1004", domain: tenant.sipDomain, password: "natted-secret-1004", natAddress: "192.168.77.10" });
    try {
      expect(await natted.register()).toBe(200);
      // out: the NATed phone (1 kHz) calls the desk phone (1.6 kHz)
      let before = recordings().length;
      const rings = () => (desk.output().match(/Incoming call/gi) ?? []).length;
      const rang = rings();
      const callOut = natted.call("1002", { toneHz: 1000 });
      await waitFor("the desk phone to ring", () => rings() > rang || undefined, 15_000);
      await answerCall(desk);
      const out = await callOut;
      expect(out.status).toBe(200);
      // 3 s heard here: the desk phone has been recording this long too (its file must hold 0.5 s of 1 kHz)
      await waitFor("1.6 kHz at the NATed phone", () => blocksWithTone(out.heard, 1600) >= 30 || undefined, 30_000, 100);
      await out.hangup();
      let file = await waitFor("the desk phone's recording", () => (recordings().length > before ? recordings().sort().at(-1) : undefined), 10_000);
      let wav = readWav(path.join(dir, "recordings", file));
      expect(blocksWithTone(wav.samples, 1000, 0.5, wav.rate)).toBeGreaterThanOrEqual(5);

      // in: the desk phone calls the NATed phone, which answers with 1 kHz
      natted.incoming = { answer: true, toneHz: 1000 };
      before = recordings().length;
      await desk.command("/dial 1004");
      const inbound = await natted.nextAnswered(15_000);
      await waitFor("1.6 kHz at the NATed phone", () => blocksWithTone(inbound.heard, 1600) >= 30 || undefined, 30_000, 100);
      // the BYE reaches it through its alias (handle_ruri_alias), not the private address
      await desk.command("/hangup");
      await inbound.waitEnded(10_000);
      file = await waitFor("the desk phone's recording", () => (recordings().length > before ? recordings().sort().at(-1) : undefined), 10_000);
      wav = readWav(path.join(dir, "recordings", file));
      expect(blocksWithTone(wav.samples, 1000, 0.5, wav.rate)).toBeGreaterThanOrEqual(5);
    } finally {
      await natted.stop();
    }
  }, 90_000);
});
