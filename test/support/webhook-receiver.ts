import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedDelivery {
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: { id: string; sequence: string; type: string; tenant_id: number; occurred_at: string; data: any };
  at: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedDelivery[];
  /** Resolves once `predicate` holds for the received list (checked on every arrival), or fails after `ms`. */
  until(predicate: (received: ReceivedDelivery[]) => boolean, ms?: number): Promise<ReceivedDelivery[]>;
  close(): Promise<void>;
}

/**
 * A real HTTP receiver on 127.0.0.1. `answer` decides each request's status (default 200), or
 * "hang" to never answer (a dead receiver).
 */
export async function startReceiver(answer: (delivery: ReceivedDelivery, index: number) => number | "hang" = () => 200): Promise<WebhookReceiver> {
  const received: ReceivedDelivery[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (raw += chunk));
    req.on("end", () => {
      const delivery: ReceivedDelivery = { headers: req.headers, raw, body: JSON.parse(raw), at: Date.now() };
      const index = received.push(delivery) - 1;
      const status = answer(delivery, index);
      if (status !== "hang") res.writeHead(status, { "content-type": "text/plain" }).end("ok");
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    until: (predicate, ms = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(received)) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(received);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; received ${JSON.stringify(received.map((r) => r.body))}`));
        }, ms);
        if (!check()) waiters.add(check);
      }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
