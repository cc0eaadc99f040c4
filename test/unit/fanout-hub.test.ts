import type WebSocket from "ws";
import { createLogger } from "../../src/common/logger";
import { InProcessPubSub } from "../../src/events/pubsub";
import { Metrics } from "../../src/observability/metrics";
import { FanoutHub, MAX_BUFFERED_BYTES } from "../../src/subscriptions/fanout-hub";
import { SeenSequences } from "../../src/subscriptions/live";
import type { ContextDeps } from "../../src/context/build-context";

/** A socket as the hub sees it: its state, how much it has not sent yet, and what it was told. */
function fakeSocket(bufferedAmount: number) {
  const sent: string[] = [];
  let terminated = false;
  const socket = {
    readyState: 1,
    bufferedAmount,
    send: (data: Buffer) => sent.push(data.toString()),
    terminate: () => {
      terminated = true;
      socket.readyState = 3;
    },
  };
  return { socket: socket as unknown as WebSocket, sent, terminated: () => terminated };
}

describe("FanoutHub.send", () => {
  const metrics = new Metrics();
  const hub = new FanoutHub(new InProcessPubSub(), {} as ContextDeps, metrics, createLogger("silent"), (f) => f);
  const subscriber = (socket: WebSocket) => ({ socket, prefix: Buffer.from('{"id":"7","type":"next","payload":'), apiKeyId: null });

  it("frames the shared payload with the subscriber's own id", () => {
    const { socket, sent } = fakeSocket(0);
    expect(hub.send(subscriber(socket), Buffer.from('{"data":{"x":1}}'))).toBe(true);
    expect(sent).toEqual(['{"id":"7","type":"next","payload":{"data":{"x":1}}}']);
    expect(JSON.parse(sent[0])).toEqual({ id: "7", type: "next", payload: { data: { x: 1 } } });
  });

  it("cuts off a socket whose unsent data passed the limit instead of buffering more", async () => {
    const { socket, sent, terminated } = fakeSocket(MAX_BUFFERED_BYTES + 1);
    const before = (await metrics.slowConsumersClosed.get()).values[0]?.value ?? 0;
    expect(hub.send(subscriber(socket), Buffer.from("{}"))).toBe(false);
    expect(terminated()).toBe(true);
    expect(sent).toEqual([]);
    expect((await metrics.slowConsumersClosed.get()).values[0].value).toBe(before + 1);
    // Closed sockets are skipped silently afterwards.
    expect(hub.send(subscriber(socket), Buffer.from("{}"))).toBe(false);
  });
});

describe("SeenSequences (a subscriber's sequences: no repeat, a late one once)", () => {
  it("refuses repeats and what is older than the first sequence seen", () => {
    const seen = new SeenSequences(10n);
    expect([10n, 9n, 11n, 11n, 12n].map((s) => seen.first(s))).toEqual([false, false, true, false, true]);
  });

  it("lets an event through that came after a newer one (a relay pass published again), once", () => {
    const seen = new SeenSequences(1n);
    // 2 was dropped by pub/sub, 3 went through; the relay publishes 2 and 3 again
    expect([3n, 2n, 3n, 2n, 4n].map((s) => seen.first(s))).toEqual([true, true, false, false, true]);
  });

  it("keeps a bounded window of gaps: a sequence far behind the newest is taken as delivered", () => {
    const seen = new SeenSequences(0n);
    expect(seen.first(1_000n)).toBe(true);
    expect(seen.first(999n)).toBe(true);
    expect(seen.first(900n)).toBe(false);
    // gaps of many events (other kinds, other filters) never grow it past the window
    for (let s = 2_000n; s < 200_000n; s += 7n) seen.first(s);
    expect((seen as unknown as { missing: Set<bigint> }).missing.size).toBeLessThanOrEqual(64);
    expect(seen.first(199_994n)).toBe(true); // just below the newest (199,995): still awaited
  });
});
