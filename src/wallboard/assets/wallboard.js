/* global window, document, sessionStorage, fetch, location, URLSearchParams, graphqlWs */
/*
 * The queue wallboard: one tile per queue of the tenant, fed by the queueStats subscription, with
 * the agents by state and the calls in progress. No framework and no build: graphql-ws's own
 * browser build (served by this server) carries the subscriptions. The key lives in sessionStorage
 * of this tab only.
 */
(() => {
  "use strict";

  const STORED_KEY = "pbx.wallboard.key";
  const STORED_TENANT = "pbx.wallboard.tenant";
  const params = new URLSearchParams(location.search);
  /** Service-level target in percent (?target=80): tiles below it turn red. */
  const TARGET = Math.min(100, Math.max(1, Number(params.get("target")) || 80)) / 100;
  /** Agents and calls are re-read at most this often after a change, and at least every REREAD_MS. */
  const DETAIL_DELAY_MS = 400;
  const REREAD_MS = 30_000;
  const MAX_CALL_ROWS = 40;

  const STATS_FIELDS = `queueId callsWaiting longestWaitSeconds agentsTotal agentsAvailable agentsBusy agentsPaused
    answeredToday abandonedToday averageWaitSeconds serviceLevel updatedAt`;
  const ME = `query WallboardMe { me { role tenantId } }`;
  const BOARD = `query WallboardBoard($tenantId: ID!) {
    tenant(id: $tenantId) { id name timezone }
    queues(tenantId: $tenantId) {
      id name number serviceLevelSeconds
      waitingCalls { callId joinedAt callerNumber callerName }
      agents { id paused pausedAt availableSince extension { id extensionNumber displayName voicemailSummary { unheard } } }
    }
    activeCalls(tenantId: $tenantId) {
      id direction state callerNumber callerName calleeNumber startedAt answeredAt
      extension { id extensionNumber displayName }
      queue { id name }
    }
  }`;
  const QUEUE_STATS = `subscription WallboardQueueStats($queueId: ID!) { queueStats(queueId: $queueId) { ${STATS_FIELDS} } }`;
  // `after` resumes from the last event seen: after a reconnect the server first sends what was missed.
  const CALL_EVENTS = `subscription WallboardCalls($tenantId: ID, $after: String) { activeCallEvents(tenantId: $tenantId, after: $after) { type sequence } }`;
  const VOICEMAIL_EVENTS = `subscription WallboardVoicemail($tenantId: ID, $after: String) {
    voicemailEvents(tenantId: $tenantId, after: $after) { sequence extension { id } summary { unheard } }
  }`;

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  /** Everything about the board being shown; replaced on sign-in. */
  let board = null;

  // ---- formatting ----------------------------------------------------------------------------

  function duration(totalSeconds) {
    const s = Math.max(0, Math.floor(totalSeconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  const percent = (share) => `${Math.round(share * 100)}%`;

  /** While the figures may be out of date (socket lost, server unreachable) the board is dimmed. */
  function setStale(stale) {
    $("board").classList.toggle("stale", stale);
  }

  function setStatus(state, text) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = text;
  }

  // ---- GraphQL over HTTP ----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  }

  async function query(key, text, variables) {
    const res = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: text, variables }),
    });
    const body = await res.json().catch(() => ({}));
    if (body.errors && body.errors.length) {
      const first = body.errors[0];
      throw new ApiError(first.message, first.extensions && first.extensions.code);
    }
    if (!res.ok || !body.data) throw new ApiError(`The server answered ${res.status}.`, "HTTP");
    return body.data;
  }

  // ---- sign-in --------------------------------------------------------------------------------

  function showLogin(message) {
    $("board").hidden = true;
    $("signout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("title").textContent = "Queue wallboard";
    setStatus("offline", "Not connected");
    $("key").focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(STORED_KEY);
    sessionStorage.removeItem(STORED_TENANT);
    if (board) board.close();
    board = null;
    showLogin(message);
  }

  async function signIn(key, tenantInput) {
    $("login").hidden = true;
    setStatus("connecting", "Connecting…");
    let me;
    try {
      ({ me } = await query(key, ME));
    } catch (error) {
      return signOut(error.code === "UNAUTHENTICATED" ? "The key was not accepted." : error.message);
    }
    if (me.role === "INGEST") return signOut("An INGEST key cannot read queues; use a VIEWER key.");
    const tenantId = me.tenantId || tenantInput;
    if (!tenantId) return signOut("An ADMIN key sees every tenant: give the tenant id too.");
    sessionStorage.setItem(STORED_KEY, key);
    sessionStorage.setItem(STORED_TENANT, tenantInput || "");
    board = new Board(key, tenantId);
    board.start();
  }

  // ---- the board ------------------------------------------------------------------------------

  class Board {
    constructor(key, tenantId) {
      this.key = key;
      this.tenantId = String(tenantId);
      /** queue id → { queue, stats, receivedAt, dispose, tile } */
      this.queues = new Map();
      this.calls = [];
      /** Unheard voicemail per extension id, from the board read and then from voicemailEvents. */
      this.unheard = new Map();
      this.detailTimer = null;
      this.closed = false;
      this.client = graphqlWs.createClient({
        url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
        connectionParams: () => ({ authorization: `Bearer ${this.key}` }),
        keepAlive: 10_000,
        retryAttempts: Infinity,
        // A refused or revoked key is final; anything else (server restart, network) is retried.
        shouldRetry: (event) => !isAuthClose(event),
        on: {
          connecting: () => setStatus("connecting", "Connecting…"),
          connected: () => {
            setStatus("live", "Live");
            setStale(false);
          },
          closed: (event) => {
            if (this.closed) return;
            if (isAuthClose(event)) signOut("The key was refused or has been revoked.");
            else {
              setStatus("offline", "Reconnecting…");
              setStale(true);
            }
          },
        },
      });
    }

    start() {
      $("board").hidden = false;
      $("signout").hidden = false;
      this.disposeCalls = this.resume(CALL_EVENTS, "activeCallEvents", () => this.scheduleDetails());
      // Each voicemail change carries the mailbox's new unheard count: the agent's badge follows it at once.
      this.disposeVoicemail = this.resume(VOICEMAIL_EVENTS, "voicemailEvents", (event) => {
        this.unheard.set(event.extension.id, event.summary.unheard);
        this.render();
      });
      this.reread = window.setInterval(() => this.load(), REREAD_MS);
      this.load();
    }

    /**
     * A subscription resumed after the last event seen: graphql-ws re-sends this very payload when
     * it reconnects, so keeping `after` current in it is all a reconnect needs to miss nothing.
     * Answers the function that ends it (whichever subscription a restart made is the one ended).
     */
    resume(query, field, onEvent) {
      let dispose;
      const start = (after) => {
        const variables = { tenantId: this.tenantId, after };
        dispose = this.client.subscribe(
          { query, variables },
          {
            next: (message) => {
              const event = message.data && message.data[field];
              if (!event) return;
              variables.after = event.sequence;
              onEvent(event);
            },
            error: (error) => {
              const first = Array.isArray(error) ? error[0] : null;
              const fields = first && first.extensions && first.extensions.fields;
              // Away longer than the server keeps events: start afresh (the board is re-read anyway).
              if (fields && fields.after && !this.closed) return start(null);
              this.onSubscriptionError(error);
            },
            complete: () => undefined,
          },
        );
      };
      start(null);
      return () => dispose();
    }

    close() {
      this.closed = true;
      window.clearInterval(this.reread);
      window.clearTimeout(this.detailTimer);
      for (const entry of this.queues.values()) entry.dispose();
      if (this.disposeCalls) this.disposeCalls();
      if (this.disposeVoicemail) this.disposeVoicemail();
      this.client.dispose();
      setStale(false);
      $("tiles").replaceChildren();
      $("calls").tBodies[0].replaceChildren();
    }

    scheduleDetails() {
      if (this.detailTimer !== null || this.closed) return;
      this.detailTimer = window.setTimeout(() => {
        this.detailTimer = null;
        this.load();
      }, DETAIL_DELAY_MS);
    }

    /** Reads the queues, their agents and the calls in progress; follows new queues, lets go of deleted ones. */
    async load() {
      let data;
      try {
        data = await query(this.key, BOARD, { tenantId: this.tenantId });
      } catch (error) {
        if (this.closed) return;
        if (error.code === "UNAUTHENTICATED") return signOut("The key was refused or has been revoked.");
        if (error.code === "NOT_FOUND" || error.code === "FORBIDDEN") return signOut(error.message);
        setStatus("offline", "Server unreachable, retrying…");
        setStale(true);
        return;
      }
      if (this.closed) return;
      if ($("status").dataset.state === "live") setStale(false);
      $("title").textContent = `${data.tenant.name} · queues`;
      this.calls = data.activeCalls;
      for (const queue of data.queues) {
        for (const agent of queue.agents) this.unheard.set(agent.extension.id, agent.extension.voicemailSummary.unheard);
      }
      const seen = new Set();
      for (const queue of data.queues) {
        seen.add(queue.id);
        let entry = this.queues.get(queue.id);
        if (!entry) {
          entry = { queue, stats: null, receivedAt: 0, tile: buildTile(queue) };
          entry.dispose = this.follow(queue.id);
          this.queues.set(queue.id, entry);
        }
        entry.queue = queue;
      }
      for (const [id, entry] of this.queues) {
        if (seen.has(id)) continue;
        entry.dispose();
        this.queues.delete(id);
      }
      const tiles = $("tiles");
      tiles.replaceChildren(...data.queues.map((queue) => this.queues.get(queue.id).tile));
      $("empty").hidden = data.queues.length > 0;
      this.render();
    }

    follow(queueId) {
      return this.client.subscribe(
        { query: QUEUE_STATS, variables: { queueId } },
        {
          next: (message) => this.onStats(queueId, message),
          error: (error) => this.onSubscriptionError(error),
          complete: () => undefined,
        },
      );
    }

    onStats(queueId, message) {
      const entry = this.queues.get(queueId);
      if (!entry) return;
      if (message.errors && message.errors.length) {
        // NOT_FOUND: the queue was deleted; the next read drops its tile.
        this.scheduleDetails();
        return;
      }
      const stats = message.data.queueStats;
      const before = entry.stats;
      entry.stats = stats;
      entry.receivedAt = Date.now();
      renderStats(entry);
      // Agents changed state or callers came and went: re-read who is who (the figures already arrived).
      if (!before || before.callsWaiting !== stats.callsWaiting || before.agentsBusy !== stats.agentsBusy || before.agentsPaused !== stats.agentsPaused || before.agentsTotal !== stats.agentsTotal) {
        this.scheduleDetails();
      }
    }

    onSubscriptionError(error) {
      const first = Array.isArray(error) ? error[0] : null;
      const code = first && first.extensions && first.extensions.code;
      if (code === "UNAUTHENTICATED" || code === "FORBIDDEN") signOut(first.message);
      else if (code === "NOT_FOUND") this.scheduleDetails();
    }

    render() {
      // An agent is on a call since its earliest leg in progress began (answered, else started ringing).
      const busy = new Map();
      for (const call of this.calls) {
        const since = call.answeredAt || call.startedAt;
        const known = busy.get(call.extension.id);
        if (!known || since < known) busy.set(call.extension.id, since);
      }
      for (const entry of this.queues.values()) {
        renderAgents(entry, busy, this.unheard);
        renderWaiting(entry);
        renderStats(entry);
      }
      renderCalls(this.calls);
    }

    /** Once a second: waits and call times move on between updates. */
    tick() {
      for (const entry of this.queues.values()) renderLongestWait(entry);
      renderCallTimes();
      renderSince();
    }
  }

  function isAuthClose(event) {
    return Boolean(event) && (event.code === 4401 || event.code === 4403);
  }

  // ---- rendering ------------------------------------------------------------------------------

  const FIGURES = [
    ["callsWaiting", "waiting", "big"],
    ["longestWaitSeconds", "longest wait", "big"],
    ["serviceLevel", "service level", "big"],
    ["agentsAvailable", "available", "agents"],
    ["agentsBusy", "on a call", "agents"],
    ["agentsPaused", "paused", "agents"],
    ["agentsTotal", "agents", "agents"],
    ["answeredToday", "answered today", "day"],
    ["abandonedToday", "abandoned today", "day"],
    ["averageWaitSeconds", "average wait", "day"],
    ["abandonRate", "abandon rate", "day"],
  ];

  function buildTile(queue) {
    const tile = el("article", "tile");
    tile.dataset.queueId = queue.id;
    const head = el("header");
    head.append(el("h2", "name", queue.name), el("span", "number", queue.number));
    tile.append(head);
    const rows = { big: el("div", "row big"), agents: el("div", "row agents"), day: el("div", "row day") };
    for (const [field, label, row] of FIGURES) {
      const figure = el("div", "figure");
      figure.dataset.field = field;
      figure.append(el("span", "value", "–"), el("span", "label", label));
      if (field === "serviceLevel") figure.append(el("span", "note"));
      rows[row].append(figure);
    }
    const waiting = el("ol", "waiting-list");
    waiting.setAttribute("aria-label", "Callers waiting");
    tile.append(rows.big, rows.agents, rows.day, waiting, el("ul", "people"));
    return tile;
  }

  function figure(entry, field) {
    return entry.tile.querySelector(`[data-field="${field}"]`);
  }

  function show(entry, field, raw, text) {
    const node = figure(entry, field);
    node.dataset.value = String(raw);
    node.querySelector(".value").textContent = text;
  }

  function renderStats(entry) {
    const { stats, queue, tile } = entry;
    tile.querySelector(".name").textContent = queue.name;
    tile.querySelector(".number").textContent = queue.number;
    figure(entry, "serviceLevel").querySelector(".label").textContent = `service level (${queue.serviceLevelSeconds} s)`;
    if (!stats) return;
    show(entry, "callsWaiting", stats.callsWaiting, String(stats.callsWaiting));
    show(entry, "serviceLevel", stats.serviceLevel, percent(stats.serviceLevel));
    for (const field of ["agentsAvailable", "agentsBusy", "agentsPaused", "agentsTotal", "answeredToday", "abandonedToday"]) {
      show(entry, field, stats[field], String(stats[field]));
    }
    show(entry, "averageWaitSeconds", stats.averageWaitSeconds, duration(Math.round(stats.averageWaitSeconds)));
    // Of today's calls that ended in the queue (answered or given up), the share that gave up.
    const ended = stats.answeredToday + stats.abandonedToday;
    show(entry, "abandonRate", ended ? stats.abandonedToday / ended : "", ended ? percent(stats.abandonedToday / ended) : "–");
    // Callers who hang up within the target do not count against the service level: with abandons,
    // say what the percentage rests on, so "100%" beside many hang-ups does not look like a fault.
    const note = figure(entry, "serviceLevel").querySelector(".note");
    note.textContent = stats.abandonedToday > 0 ? `${stats.answeredToday} answered, ${stats.abandonedToday} abandoned` : "";
    note.title = stats.abandonedToday > 0 ? `Callers who hung up within ${queue.serviceLevelSeconds} s are not counted in the service level.` : "";
    tile.classList.toggle("breach", stats.serviceLevel < TARGET);
    tile.classList.toggle("waiting", stats.callsWaiting > 0);
    tile.dataset.updatedAt = stats.updatedAt;
    renderLongestWait(entry);
  }

  /** The longest wait grows between updates; the raw figure stays in data-value. */
  function renderLongestWait(entry) {
    const { stats, queue } = entry;
    if (!stats) return;
    const waited = stats.callsWaiting > 0 ? stats.longestWaitSeconds + (Date.now() - entry.receivedAt) / 1000 : 0;
    show(entry, "longestWaitSeconds", stats.longestWaitSeconds, duration(waited));
    figure(entry, "longestWaitSeconds").classList.toggle("over", waited > queue.serviceLevelSeconds);
  }

  const STATE_ORDER = { available: 0, busy: 1, paused: 2 };
  const STATE_LABEL = { available: "available", busy: "on a call", paused: "paused" };

  /**
   * Agents by state, each with its time in that state where the server knows when it began: paused
   * since pausedAt, on a call since its earliest leg in progress, available since availableSince
   * (enrolment, end of the last pause or call; none until the next read after a call ends).
   */
  function renderAgents(entry, busy, unheard) {
    const people = entry.tile.querySelector(".people");
    const agents = entry.queue.agents.map((agent) => {
      const state = agent.paused ? "paused" : busy.has(agent.extension.id) ? "busy" : "available";
      return {
        name: agent.extension.displayName || agent.extension.extensionNumber,
        number: agent.extension.extensionNumber,
        state,
        since: state === "paused" ? agent.pausedAt : state === "busy" ? busy.get(agent.extension.id) : agent.availableSince,
        unheard: unheard.get(agent.extension.id) ?? 0,
      };
    });
    agents.sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.name.localeCompare(b.name));
    people.replaceChildren(
      ...agents.map((agent) => {
        const item = el("li", `agent ${agent.state}`);
        item.dataset.state = agent.state;
        item.dataset.unheard = String(agent.unheard);
        item.title = `${agent.name} (${agent.number}): ${STATE_LABEL[agent.state]}, ${agent.unheard} unheard voicemail`;
        item.append(el("span", "who", agent.name), el("span", "ext", agent.number));
        if (agent.since) {
          const time = el("span", "since");
          time.dataset.since = agent.since;
          item.append(time);
        }
        if (agent.unheard > 0) item.append(el("span", "voicemail", `✉ ${agent.unheard}`));
        return item;
      }),
    );
  }

  /** The callers waiting, longest first, each with a wait that grows from its join time. */
  function renderWaiting(entry) {
    const list = entry.tile.querySelector(".waiting-list");
    list.replaceChildren(
      ...entry.queue.waitingCalls.map((call) => {
        const item = el("li", "caller");
        item.dataset.callId = call.callId;
        // Who is waiting, as a person reads it: the name and number the engine gave (not the call id).
        item.append(el("span", "who", call.callerName || (call.callerNumber ? "" : "Unknown caller")));
        if (call.callerNumber) item.append(el("span", "num", call.callerNumber));
        const time = el("span", "since wait");
        time.dataset.since = call.joinedAt;
        item.append(time);
        return item;
      }),
    );
    renderSince();
  }

  /** Every "time since" on the board (waits, agents' states), from the server's timestamps. */
  function renderSince() {
    for (const node of document.querySelectorAll("#tiles .since")) {
      const seconds = Math.max(0, (Date.now() - Date.parse(node.dataset.since)) / 1000);
      node.dataset.seconds = String(Math.floor(seconds));
      node.textContent = duration(seconds);
    }
  }

  const CALL_COLUMNS = ["Agent / extension", "Caller", "Called", "Queue", "State", "Time"];

  function renderCalls(calls) {
    const body = $("calls").tBodies[0];
    const shown = calls.slice(0, MAX_CALL_ROWS);
    body.replaceChildren(
      ...shown.map((call) => {
        const row = el("tr", call.state.toLowerCase());
        const extension = call.extension.displayName ? `${call.extension.displayName} (${call.extension.extensionNumber})` : call.extension.extensionNumber;
        const caller = [call.callerName, call.callerNumber].filter(Boolean).join(" ");
        const time = el("td", "time");
        time.dataset.since = call.answeredAt || call.startedAt;
        const cells = [
          el("td", "extension", extension),
          el("td", "from", caller || "–"),
          el("td", "called", call.calleeNumber || "–"),
          el("td", "queue", call.queue ? call.queue.name : "–"),
          el("td", "state", call.state.toLowerCase()),
          time,
        ];
        // On a phone the rows become cards: each cell says what it is (the header row is hidden there).
        cells.forEach((cell, i) => (cell.dataset.label = CALL_COLUMNS[i]));
        row.append(...cells);
        return row;
      }),
    );
    $("call-count").textContent = calls.length ? `(${calls.length})` : "";
    $("no-calls").hidden = calls.length > 0;
    $("calls").hidden = calls.length === 0;
    renderCallTimes();
  }

  function renderCallTimes() {
    for (const cell of document.querySelectorAll("#calls td.time")) {
      cell.textContent = duration((Date.now() - Date.parse(cell.dataset.since)) / 1000);
    }
  }

  // ---- start-up -------------------------------------------------------------------------------

  function clock() {
    $("clock").textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key").value.trim();
      const tenant = $("tenant").value.trim();
      $("key").value = "";
      if (key) signIn(key, tenant);
    });
    $("signout").addEventListener("click", () => signOut(""));
    window.setInterval(() => {
      clock();
      if (board) board.tick();
    }, 1000);
    clock();
    const key = sessionStorage.getItem(STORED_KEY);
    if (key) signIn(key, sessionStorage.getItem(STORED_TENANT) || "");
    else showLogin("");
  });
})();
