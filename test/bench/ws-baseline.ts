/**
 * The floor of `npm run bench:fanout -- --baseline`: a plain `ws` server that speaks just enough
 * graphql-transport-ws (ack, subscribe, ping) and, for each Redis message, projects the benchmark's
 * selection once and writes one frame per subscription under its alias. No GraphQL, no auth, no
 * per-event checks: what any server must at least do to deliver the same bytes.
 *
 *   PORT=… REDIS_URL=… CHANNEL_PATTERN='<prefix>pbx:topic:tenant.*' node dist/test/bench/ws-baseline.js
 */
import http from "node:http";
import { Redis } from "ioredis";
import { WebSocketServer, type WebSocket } from "ws";

interface Subscription {
  socket: WebSocket;
  id: string;
  alias: string;
}

const subscriptions = new Set<Subscription>();
const server = http.createServer((req, res) => {
  if (req.url === "/metrics") res.end(`subscriptions_active ${subscriptions.size}\n`);
  else res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, path: "/graphql" });
wss.on("connection", (socket) => {
  const own: Subscription[] = [];
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { type: string; id?: string; payload?: { query?: string } };
    if (message.type === "connection_init") socket.send('{"type":"connection_ack"}');
    else if (message.type === "ping") socket.send('{"type":"pong"}');
    else if (message.type === "subscribe") {
      const alias = /\{\s*(?:(\w+)\s*:\s*)?(\w+)/.exec(message.payload?.query ?? "");
      const subscription = { socket, id: message.id!, alias: alias?.[1] ?? alias?.[2] ?? "registrationEvents" };
      own.push(subscription);
      subscriptions.add(subscription);
    }
  });
  socket.once("close", () => own.forEach((s) => subscriptions.delete(s)));
});

/** The benchmark's selection: type tenantId occurredAt extension { id extensionNumber } device { id contactUri transport registered expiresAt }. */
function project(event: any): string {
  return JSON.stringify({
    type: event.type,
    tenantId: String(event.tenantId),
    occurredAt: event.occurredAt,
    extension: { id: String(event.extension.id), extensionNumber: event.extension.extensionNumber },
    device: { id: String(event.device.id), contactUri: event.device.contactUri, transport: String(event.device.transport).toUpperCase(), registered: event.device.registered, expiresAt: event.device.expiresAt },
  });
}

const redis = new Redis(process.env.REDIS_URL!);
redis.on("pmessage", (_pattern: string, _channel: string, message: string) => {
  const inner = project(JSON.parse(message));
  for (const s of subscriptions) {
    if (s.socket.readyState === 1) s.socket.send(`{"id":${JSON.stringify(s.id)},"type":"next","payload":{"data":{"${s.alias}":${inner}}}}`);
  }
});

void redis.psubscribe(process.env.CHANNEL_PATTERN!).then(() => {
  server.listen(Number(process.env.PORT), "127.0.0.1", () => process.stdout.write("listening\n"));
});
process.once("SIGTERM", () => {
  wss.close();
  server.close();
  redis.disconnect();
  process.exit(0);
});
