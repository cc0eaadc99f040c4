/* global window, document, fetch, setInterval, clearInterval, AudioContext, HTMLInputElement */
// The softphone (contract §15): SIP.js over the engine's WebSocket listener, WebRTC media through
// the engine's rtpengine. The SIP secret lives in this module's memory only: it is handed to
// SIP.js for digest authentication with the engine and is never sent to this server.
import {
  Inviter,
  Registerer,
  RegistererState,
  SessionState,
  Subscriber,
  UserAgent,
} from "/phone/sip.js/index.js";

const $ = (id) => document.getElementById(id);
const MEDIA = { constraints: { audio: true, video: false } };
const SDH_FACTORY = {
  // the engine's rtpengine gives its own candidates; no STUN/TURN of a third party
  peerConnectionConfiguration: { iceServers: [] },
  iceGatheringTimeout: 2000,
};

let ua = null;
let registerer = null;
let subscriber = null;
let session = null;
let incoming = null;
let identity = null;
let callTimer = null;
let meter = null;

function setReg(state, text) {
  const el = $("reg");
  el.dataset.state = state;
  el.textContent = text;
}

function showError(id, text) {
  $(id).textContent = text || "";
}

async function loadConfig() {
  try {
    const res = await fetch("/phone/config.json", { cache: "no-store" });
    const config = await res.json();
    if (config.wsUrl && !$("ws").value) $("ws").value = config.wsUrl;
  } catch {
    // the address can still be typed
  }
}

const REASONS = {
  401: "wrong extension number or secret",
  403: "wrong extension number or secret (or the extension is disabled)",
  404: "no such number",
  408: "no answer",
  480: "not reachable now",
  486: "busy",
  487: "cancelled",
  488: "the call's media could not be agreed",
  503: "the engine cannot take the call now",
  603: "declined",
};
const reason = (code, phrase) => `${code} ${REASONS[code] || phrase || ""}`.trim();

async function signIn(event) {
  event.preventDefault();
  showError("login-error", "");
  const domain = $("domain").value.trim().toLowerCase();
  const number = $("number").value.trim();
  const secret = $("secret").value;
  const wsUrl = $("ws").value.trim();
  if (!/^wss?:\/\/[^\s]+$/.test(wsUrl)) return showError("login-error", "The engine's address must start with ws:// or wss://");
  if (!/^[A-Za-z0-9.-]+$/.test(domain)) return showError("login-error", "The SIP domain is a host name such as acme.pbx.example");
  if (!/^[0-9A-Za-z_.+*-]+$/.test(number)) return showError("login-error", "The extension number is digits, such as 1001");
  const uri = UserAgent.makeURI(`sip:${number}@${domain}`);
  if (!uri) return showError("login-error", "That SIP domain and extension do not make a SIP address");
  $("login").querySelector("button[type=submit]").disabled = true;
  setReg("connecting", "Connecting…");
  identity = { domain, number, wsUrl };
  ua = new UserAgent({
    uri,
    transportOptions: { server: wsUrl, connectionTimeout: 5 },
    authorizationUsername: number,
    authorizationPassword: secret,
    userAgentString: "pbx-phone (SIP.js)",
    logLevel: "warn",
    sessionDescriptionHandlerFactoryOptions: SDH_FACTORY,
    delegate: {
      onInvite: onInvite,
      onNotify: (notification) => {
        // unsolicited message-waiting NOTIFY (contract §13) to the registered contact
        notification.accept();
        showMwi(notification.request.body);
      },
      onDisconnect: (error) => {
        if (error && ua) setReg("failed", "Connection to the engine lost");
      },
    },
  });
  $("secret").value = "";
  try {
    await ua.start();
  } catch (error) {
    failSignIn(`Cannot reach the engine at ${wsUrl}: ${error && error.message ? error.message : error}`);
    return;
  }
  registerer = new Registerer(ua, { expires: 300 });
  registerer.stateChange.addListener((state) => {
    if (state === RegistererState.Registered) {
      setReg("registered", "Registered");
      enterPhone();
    } else if (state === RegistererState.Unregistered && ua) {
      setReg("offline", "Not registered");
    }
  });
  registerer
    .register({
      requestDelegate: {
        onReject: (response) => {
          const code = response.message.statusCode;
          failSignIn(`Registration refused: ${reason(code, response.message.reasonPhrase)}`);
        },
      },
    })
    .catch((error) => failSignIn(`Registration failed: ${error.message || error}`));
}

async function failSignIn(text) {
  setReg("failed", "Not registered");
  showError("login-error", text);
  $("login").querySelector("button[type=submit]").disabled = false;
  const old = ua;
  ua = null;
  registerer = null;
  identity = null;
  $("login").hidden = false;
  $("phone").hidden = true;
  $("signout").hidden = true;
  if (old) await old.stop().catch(() => undefined);
}

function enterPhone() {
  if (!$("phone").hidden) return;
  $("login").hidden = true;
  $("phone").hidden = false;
  $("signout").hidden = false;
  $("login").querySelector("button[type=submit]").disabled = false;
  $("aor").textContent = `${identity.number}@${identity.domain}`;
  $("ws-shown").textContent = identity.wsUrl;
  $("title").textContent = `Phone · ${identity.number}`;
  subscribeMwi();
}

function subscribeMwi() {
  // the extension's own mailbox (message-summary, RFC 3842): served when the engine runs the media
  // application; otherwise the engine answers 489 and the count stays hidden
  subscriber = new Subscriber(ua, UserAgent.makeURI(`sip:${identity.number}@${identity.domain}`), "message-summary", { expires: 3600 });
  subscriber.delegate = {
    onNotify: (notification) => {
      notification.accept();
      showMwi(notification.request.body);
    },
  };
  subscriber.subscribe().catch(() => undefined);
}

function showMwi(body) {
  if (!body) return;
  const waiting = /Messages-Waiting:\s*(yes|no)/i.exec(body);
  const counts = /Voice-Message:\s*(\d+)\/(\d+)/i.exec(body);
  const el = $("mwi");
  const unheard = counts ? Number(counts[1]) : waiting && waiting[1].toLowerCase() === "yes" ? 1 : 0;
  el.dataset.count = String(unheard);
  el.dataset.waiting = unheard > 0 ? "yes" : "no";
  el.textContent = unheard > 0 ? `Voicemail: ${unheard} new message${unheard === 1 ? "" : "s"}` : "Voicemail: no new messages";
  el.hidden = false;
}

async function signOut() {
  const old = ua;
  hangUp();
  ua = null;
  try {
    if (subscriber) await subscriber.unsubscribe().catch(() => undefined);
    if (registerer) await registerer.unregister().catch(() => undefined);
  } finally {
    registerer = null;
    subscriber = null;
    identity = null;
    if (old) await old.stop().catch(() => undefined);
    setReg("offline", "Signed out");
    $("phone").hidden = true;
    $("login").hidden = false;
    $("signout").hidden = true;
    $("mwi").hidden = true;
    $("title").textContent = "Phone";
  }
}

// ------------------------------------------------------------ calls

function onInvite(invitation) {
  if (session || incoming) {
    invitation.reject({ statusCode: 486 });
    return;
  }
  incoming = invitation;
  const from = invitation.remoteIdentity;
  $("incoming-from").textContent = from.displayName ? `${from.displayName} (${from.uri.user})` : from.uri.user;
  $("incoming").hidden = false;
  invitation.stateChange.addListener((state) => {
    if (state === SessionState.Terminated && incoming === invitation) {
      incoming = null;
      $("incoming").hidden = true;
    }
  });
}

async function answer() {
  const invitation = incoming;
  if (!invitation) return;
  incoming = null;
  $("incoming").hidden = true;
  track(invitation, invitation.remoteIdentity.uri.user);
  try {
    await invitation.accept({ sessionDescriptionHandlerOptions: MEDIA });
  } catch (error) {
    showError("call-error", `Could not answer: ${error.message || error}`);
  }
}

async function decline() {
  const invitation = incoming;
  if (!invitation) return;
  incoming = null;
  $("incoming").hidden = true;
  await invitation.reject({ statusCode: 603 }).catch(() => undefined);
}

async function call(event) {
  event.preventDefault();
  showError("call-error", "");
  const target = $("target").value.trim();
  if (!ua || session) return;
  if (!/^[0-9*#+A-Za-z_.-]+$/.test(target)) return showError("call-error", "Type a number to call");
  const uri = UserAgent.makeURI(`sip:${encodeURIComponent(target).replace(/%2A/g, "*")}@${identity.domain}`);
  if (!uri) return showError("call-error", "That is not a number to call");
  const inviter = new Inviter(ua, uri, { sessionDescriptionHandlerOptions: MEDIA });
  track(inviter, target);
  try {
    await inviter.invite({
      requestDelegate: {
        onReject: (response) => showError("call-error", `Call failed: ${reason(response.message.statusCode, response.message.reasonPhrase)}`),
      },
    });
  } catch (error) {
    showError("call-error", `Call failed: ${error.message || error}`);
    endCallUi();
  }
}

function track(s, peer) {
  session = s;
  $("call").hidden = false;
  $("dial").querySelector("#call-button").disabled = true;
  $("call-peer").textContent = peer;
  setCallState("calling", s instanceof Inviter ? "Calling" : "Connecting");
  $("mute").setAttribute("aria-pressed", "false");
  $("hold").setAttribute("aria-pressed", "false");
  s.stateChange.addListener((state) => {
    if (session !== s) return;
    if (state === SessionState.Established) {
      setCallState("connected", "In call with");
      attachMedia(s);
      const started = Date.now();
      callTimer = setInterval(() => {
        const t = Math.floor((Date.now() - started) / 1000);
        $("call-time").textContent = `${Math.floor(t / 60)}:${String(t % 60).padStart(2, "0")}`;
      }, 500);
    } else if (state === SessionState.Terminated) {
      endCallUi();
    }
  });
}

function setCallState(state, text) {
  $("call-state").dataset.state = state;
  $("call-state").textContent = text;
}

function attachMedia(s) {
  const sdh = s.sessionDescriptionHandler;
  if (!sdh) return;
  const audio = $("remote");
  audio.srcObject = sdh.remoteMediaStream;
  audio.play().catch(() => undefined);
  startMeter(sdh.remoteMediaStream);
}

function startMeter(stream) {
  stopMeter();
  try {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    context.createMediaStreamSource(stream).connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    const tick = () => {
      analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (const x of data) sum += x * x;
      const rms = Math.sqrt(sum / data.length);
      $("level").style.width = `${Math.min(100, Math.round(rms * 300))}%`;
    };
    meter = { context, analyser, timer: setInterval(tick, 100) };
  } catch {
    meter = null;
  }
}

function stopMeter() {
  if (!meter) return;
  clearInterval(meter.timer);
  meter.context.close().catch(() => undefined);
  meter = null;
  $("level").style.width = "0";
}

function endCallUi() {
  session = null;
  clearInterval(callTimer);
  callTimer = null;
  stopMeter();
  $("call-time").textContent = "";
  $("call").hidden = true;
  $("dial").querySelector("#call-button").disabled = false;
  $("remote").srcObject = null;
  $("dtmf-sent").textContent = "";
}

function hangUp() {
  const s = session;
  if (!s) return;
  if (s.state === SessionState.Established) s.bye().catch(() => undefined);
  else if (s instanceof Inviter) s.cancel().catch(() => undefined);
  else s.reject().catch(() => undefined);
}

function toggleMute() {
  const sdh = session && session.sessionDescriptionHandler;
  if (!sdh || !sdh.peerConnection) return;
  const muted = $("mute").getAttribute("aria-pressed") !== "true";
  for (const sender of sdh.peerConnection.getSenders()) if (sender.track) sender.track.enabled = !muted;
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute" : "Mute";
}

async function toggleHold() {
  const s = session;
  if (!s || s.state !== SessionState.Established) return;
  const hold = $("hold").getAttribute("aria-pressed") !== "true";
  $("hold").disabled = true;
  s.sessionDescriptionHandlerOptionsReInvite = { ...MEDIA, hold };
  try {
    await s.invite({
      requestDelegate: {
        onAccept: () => {
          $("hold").setAttribute("aria-pressed", String(hold));
          $("hold").textContent = hold ? "Resume" : "Hold";
          setCallState(hold ? "held" : "connected", hold ? "On hold with" : "In call with");
        },
        onReject: (response) => showError("call-error", `Hold failed: ${reason(response.message.statusCode, response.message.reasonPhrase)}`),
      },
    });
  } catch (error) {
    showError("call-error", `Hold failed: ${error.message || error}`);
  } finally {
    $("hold").disabled = false;
  }
}

function sendDtmf(key) {
  const s = session;
  if (!s || s.state !== SessionState.Established) return false;
  // RFC 4733 telephone-events in the media (passed through by rtpengine); SIP INFO if the
  // connection has no DTMF sender
  const sdh = s.sessionDescriptionHandler;
  const sent = sdh && sdh.sendDtmf(key, { duration: 160, interToneGap: 70 });
  if (!sent) {
    s.info({ requestOptions: { body: { contentDisposition: "render", contentType: "application/dtmf-relay", content: `Signal=${key}\r\nDuration=160` } } }).catch(() => undefined);
  }
  $("dtmf-sent").textContent = `${$("dtmf-sent").textContent || "Sent: "}${key}`;
  return true;
}

function pressKey(key) {
  if (sendDtmf(key)) return;
  $("target").value += key;
}

// ------------------------------------------------------------ wiring

$("login").addEventListener("submit", signIn);
$("signout").addEventListener("click", () => void signOut());
$("dial").addEventListener("submit", call);
$("answer").addEventListener("click", () => void answer());
$("decline").addEventListener("click", () => void decline());
$("hangup").addEventListener("click", hangUp);
$("mute").addEventListener("click", toggleMute);
$("hold").addEventListener("click", () => void toggleHold());
$("backspace").addEventListener("click", () => ($("target").value = $("target").value.slice(0, -1)));
for (const button of $("pad").querySelectorAll("button[data-key]")) {
  button.addEventListener("click", () => pressKey(button.dataset.key));
}
document.addEventListener("keydown", (event) => {
  if (!session || event.target instanceof HTMLInputElement) return;
  if (/^[0-9*#]$/.test(event.key)) sendDtmf(event.key);
});
// A closed tab can never be called again (a browser accepts no connection): its binding goes with it.
window.addEventListener("pagehide", () => {
  if (!ua) return;
  if (registerer) registerer.unregister().catch(() => undefined);
  ua.stop().catch(() => undefined);
});

// Read-only diagnostics for tests and support: what the page hears (an AnalyserNode's view of the
// remote audio) and the call's state. Never the secret.
window.pbxPhone = Object.freeze({
  state: () => ({ registered: !!registerer && registerer.state === RegistererState.Registered, call: session ? session.state : null, incoming: !!incoming }),
  remoteStream: () => (session && session.sessionDescriptionHandler ? session.sessionDescriptionHandler.remoteMediaStream : null),
});

void loadConfig();
