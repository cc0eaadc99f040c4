import net from "node:net";

/** One server line of HAProxy's `show stat`: its proxy, its name and its status (UP, DOWN, …). */
export interface HaproxyServerState {
  proxy: string;
  server: string;
  status: string;
}

/**
 * The servers' states read from an HAProxy stats socket (`show stat`), frontends and backends left
 * out; an unreachable socket reads as no servers (HAProxy still starting).
 */
export function haproxyServerStates(socketPath: string): Promise<HaproxyServerState[]> {
  return new Promise((resolve) => {
    let text = "";
    const socket = net.connect(socketPath, () => socket.end("show stat\n"));
    socket.on("data", (d: Buffer) => (text += d.toString()));
    socket.on("error", () => resolve([]));
    socket.on("close", () => {
      const states: HaproxyServerState[] = [];
      for (const line of text.split("\n")) {
        const f = line.split(",");
        if (f[1] && f[1] !== "FRONTEND" && f[1] !== "BACKEND" && !f[0]!.startsWith("#")) states.push({ proxy: f[0]!, server: f[1], status: f[17] ?? "" });
      }
      resolve(states);
    });
  });
}
