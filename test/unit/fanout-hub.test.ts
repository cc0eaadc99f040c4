import type WebSocket from "ws";
import { createLogger } from "../../src/common/logger";
import { InProcessPubSub } from "../../src/events/pubsub";
import { Metrics } from "../../src/observability/metrics";
import { FanoutHub, MAX_BUFFERED_BYTES } from "../../src/subscriptions/fanout-hub";
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
