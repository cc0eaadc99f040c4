import dgram from "node:dgram";
import net from "node:net";

/**
 * Ports for listeners the tests hand to other processes (Kamailio's SIP and WebSocket listeners,
 * redis-server, an API started as a child, phones) or open themselves.
 *
 * They come from below the kernel's ephemeral range (ip_local_port_range, 32768–60999 here): a port
 * the kernel gave us with `listen(0)` and that we close again for the child to bind is one any
 * process's next outgoing connection can take meanwhile — seen with three jest workers: Kamailio's
 * WebSocket port "Address already in use" and `npm run pbx` stopping. Below that range only a
 * listener can hold a port, and each candidate is checked free first. The ranges the suites fix
 * (PostgreSQL 25440–25444, Redis 26380–26398 and their cluster bus 16380–16398) and hand to media
 * (baresip RTP 20000–40000, rtpengine 30000+) are avoided: 10000–15999 and 16500–19999.
 */
function candidate(): number {
  const n = Math.floor(Math.random() * 9500);
  return n < 6000 ? 10000 + n : 16500 + (n - 6000);
}

export function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer().once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

export function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket("udp4").once("error", () => resolve(false));
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

/** A TCP port free on 127.0.0.1, outside the ephemeral range. */
export async function freeTcpPort(): Promise<number> {
  for (;;) {
    const port = candidate();
    if (await tcpFree(port)) return port;
  }
}

/** A UDP port free on 127.0.0.1, outside the ephemeral range. */
export async function freeUdpPort(): Promise<number> {
  for (;;) {
    const port = candidate();
    if (await udpFree(port)) return port;
  }
}
