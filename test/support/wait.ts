/**
 * Waiting on conditions, never on the clock: the suite runs on loaded machines (CI shares its cores),
 * so a test polls for the state it needs and fails only when the state never comes.
 */

/** Polls `check` until it returns something other than undefined/false; fails after `ms` naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * The sum of a Prometheus sample `name` over the series whose labels include `labels`, read from
 * a /metrics text (0 when there is none yet).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(match[3]);
  }
  return total;
}

/** Reads `name` (summed as metricValue does) from a server's /metrics. */
export async function scrapeMetric(metricsUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue(await (await fetch(metricsUrl)).text(), name, labels);
}

/**
 * Whether a Redis `CLIENT LIST` reply shows a stream consumer's reader (`consumer`'s, or any when
 * not given) blocked in XREADGROUP: the moment to cut Redis or stop the server mid-read.
 */
export function streamReaderBlocked(clientList: unknown, consumer = ""): boolean {
  return String(clientList)
    .split("\n")
    .some((l) => l.includes(` name=pbx-api:stream-reader:${consumer}`) && / flags=\S*b/.test(l) && l.includes(" cmd=xreadgroup "));
}
