import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freeUdpPort, stopProcess } from "./sip";

/**
 * SIPp playing carriers and phones for the trunk tests (research §7.6): everything on loopback
 * addresses, on free ports, every message SIPp sent or received kept in a file the test reads,
 * every process stopped by its PID.
 */
const here = [path.resolve(__dirname, "sipp"), path.resolve(__dirname, "../../../test/support/sipp")].find((d) => fs.existsSync(path.join(d, "carrier-uas.xml")))!;
export const SIPP = {
  phoneCall: path.join(here, "phone-call.xml"),
  /** The same call held four seconds (for concurrency caps). */
  phoneCallHold: path.join(here, "phone-call-hold.xml"),
  carrierAnswers: path.join(here, "carrier-uas.xml"),
  carrier503: path.join(here, "carrier-uas-503.xml"),
  carrierCalls: path.join(here, "carrier-uac.xml"),
};

/** The messages of a SIPp -message_file: blocks after a dashed line, "UDP message sent|received …" then the message. */
function messages(log: string, kind: "sent" | "received"): string[] {
  return log
    .split(/^-{10,}.*$/m)
    .map((block) => block.trim())
    .filter((block) => new RegExp(`^\\w+ message ${kind}`).test(block))
    .map((block) => block.replace(/^.*\n/, "").trim());
}

/** The SIP messages SIPp received, one string per message. */
export const received = (log: string): string[] => messages(log, "received");

/** The SIP messages SIPp sent. */
export const sent = (log: string): string[] => messages(log, "sent");

export interface SippServer {
  ip: string;
  port: number;
  /** Everything logged so far (messages sent and received). */
  log(): string;
  /** The INVITEs it received. */
  invites(): string[];
  stop(): Promise<void>;
}

/** A SIPp UAS (a carrier) on ip:port until stopped. */
export async function startSippServer(scenario: string, ip = "127.0.0.1"): Promise<SippServer> {
  const port = await freeUdpPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-carrier-"));
  const messages = path.join(dir, "messages.log");
  const child: ChildProcess = spawn("sipp", ["-sf", scenario, "-i", ip, "-p", String(port), "-nostdin", "-trace_msg", "-message_file", messages, "-max_recv_loops", "100"], {
    stdio: ["ignore", "ignore", "pipe"],
    cwd: dir,
  });
  let errors = "";
  child.stderr!.on("data", (d: Buffer) => (errors += d.toString()));
  const log = () => (fs.existsSync(messages) ? fs.readFileSync(messages, "utf8") : "");
  // SIPp binds at once; a moment's exit is a start failure.
  await new Promise((r) => setTimeout(r, 200));
  if (child.exitCode !== null) throw new Error(`sipp server exited: ${errors}`);
  return {
    ip,
    port,
    log,
    invites: () => received(log()).filter((m) => m.startsWith("INVITE ")),
    stop: async () => {
      await stopProcess(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SippCallResult {
  code: number | null;
  log: string;
  /** The final status of the (last) INVITE: 200, 403, 404 … or undefined when none came. */
  status: number | undefined;
  stderr: string;
}

/** One SIPp UAC call (scenario with an injection line) towards `target` ip:port, from ip. */
export async function sippCall(target: string, scenario: string, fields: string[], ip = "127.0.0.1", timeoutS = 20, extraArgs: string[] = []): Promise<SippCallResult> {
  const local = await freeUdpPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-sippcall-"));
  const messages = path.join(dir, "messages.log");
  fs.writeFileSync(path.join(dir, "fields.csv"), `SEQUENTIAL\n${fields.join(";")}\n`);
  const child = spawn(
    "sipp",
    [target, "-sf", scenario, "-inf", path.join(dir, "fields.csv"), "-i", ip, "-p", String(local), "-m", "1", "-nostdin",
      "-trace_msg", "-message_file", messages, "-timeout", `${timeoutS}s`, "-timeout_error", ...extraArgs],
    { stdio: ["ignore", "ignore", "pipe"], cwd: dir },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  const log = fs.existsSync(messages) ? fs.readFileSync(messages, "utf8") : "";
  fs.rmSync(dir, { recursive: true, force: true });
  const finals = received(log)
    .filter((m) => /^CSeq: \d+ INVITE/m.test(m))
    .map((m) => Number(/^SIP\/2\.0 (\d{3})/.exec(m)?.[1]))
    .filter((s) => s >= 200 && s !== 407 && s !== 401);
  return { code, log, status: finals.at(-1), stderr };
}

/** A header's value in a SIP message ("" when absent). */
export function header(message: string, name: string): string {
  return new RegExp(`^${name}:\\s*(.*)$`, "mi").exec(message)?.[1]?.trim() ?? "";
}

/**
 * A carrier's registrar (SIPp): challenges each REGISTER, checks the digest with verifyauth against
 * username/password in realm, answers 200 when it holds and 403 when not.
 */
export function registrarScenario(dir: string, username: string, password: string, realm: string): string {
  const file = path.join(dir, `registrar-${Date.now()}-${Math.random().toString(36).slice(2)}.xml`);
  const reply = (status: string, extra = "") => `<![CDATA[
      SIP/2.0 ${status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
${extra}      Content-Length: 0

    ]]>`;
  fs.writeFileSync(
    file,
    `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier registrar">
  <recv request="REGISTER" />
  <send>${reply("401 Unauthorized", `      WWW-Authenticate: Digest realm="${realm}", nonce="[pid][call_number]abcdef", algorithm=MD5\n`)}</send>
  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="authvalid" username="${username}" password="${password}" />
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good" />
  <send next="end">${reply("403 Forbidden")}</send>
  <label id="good" />
  <send>${reply("200 OK", "      [last_Contact:];expires=60\n      Expires: 60\n")}</send>
  <label id="end" />
</scenario>
`,
  );
  return file;
}
