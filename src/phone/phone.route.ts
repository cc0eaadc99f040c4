import { Router, type Request, type Response } from "express";
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../common/logger";
import { assetDirs } from "../wallboard/wallboard.route";

const PAGE_FILES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "phone.js": "text/javascript; charset=utf-8",
  "phone.css": "text/css; charset=utf-8",
};

interface Asset {
  body: Buffer;
  type: string;
}

/** SIP.js's ES module build (lib/), served as it ships: the browser loads it with import, no bundler. */
function sipJsDir(): string {
  let dir = path.dirname(require.resolve("sip.js"));
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return path.join(dir, "lib");
}

function loadSipJs(dir: string): Map<string, Asset> {
  const files = new Map<string, Asset>();
  const walk = (sub: string) => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith(".js")) files.set(rel, { body: fs.readFileSync(path.join(dir, rel)), type: "text/javascript; charset=utf-8" });
    }
  };
  walk("");
  return files;
}

/**
 * The page may talk to the engine's WebSocket listener, which is another origin (another port, often
 * another host) and can be edited on the page: any ws:/wss: address. Everything else is 'self'.
 */
function phoneContentSecurityPolicy(): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self' ws: wss:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * GET /phone: a softphone for one extension (contract §15). The page, its script and SIP.js come from
 * this server; the SIP secret is typed into the page and goes only to the engine's WebSocket
 * listener (digest authentication), never to this API. GET /phone/config.json tells the page the
 * listener's address (PHONE_WS_URL).
 */
export function createPhoneRouter(log: Logger, phoneWsUrl: string | undefined): Router {
  const router = Router();
  const dir = assetDirs(__dirname, "phone").find((candidate) => fs.existsSync(path.join(candidate, "index.html")));
  let assets: Map<string, Asset>;
  let sipJs: Map<string, Asset>;
  try {
    if (!dir) throw new Error("src/phone/assets not found");
    assets = new Map(Object.entries(PAGE_FILES).map(([name, type]) => [name, { body: fs.readFileSync(path.join(dir, name)), type }]));
    sipJs = loadSipJs(sipJsDir());
  } catch (error) {
    // The API does not depend on the page: a build shipped without it still serves everything else.
    log.error({ err: error }, "the softphone's files are missing from this installation; /phone answers 503");
    router.use((_req, res) => void res.status(503).json({ message: "The softphone is not installed with this build." }));
    return router;
  }
  const headers = (res: Response, type: string, cache: string) =>
    res.set({
      "content-type": type,
      "content-security-policy": phoneContentSecurityPolicy(),
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      // the page asks for the microphone; nothing else
      "permissions-policy": "microphone=(self), camera=()",
      "cache-control": cache,
    });
  const sendFrom = (files: Map<string, Asset>, name: string, cache: string) => (_req: Request, res: Response) => {
    const asset = files.get(name);
    if (!asset) return void res.status(404).json({ message: "Not Found" });
    headers(res, asset.type, cache);
    res.send(asset.body);
  };
  router.get("/", (req, res) => sendFrom(assets, "index.html", "no-cache")(req, res));
  router.get("/config.json", (_req, res) => {
    headers(res, "application/json; charset=utf-8", "no-cache");
    res.send(JSON.stringify({ wsUrl: phoneWsUrl ?? null }));
  });
  // /phone/sip.js/<path inside SIP.js's lib/>: only the files that exist there (a map, so no path walks out)
  router.get(/^\/sip\.js\/(.+)$/, (req, res) => sendFrom(sipJs, String((req.params as Record<string, string>)[0]), "public, max-age=3600")(req, res));
  router.get("/:file", (req, res) => sendFrom(assets, String(req.params.file), "no-cache")(req, res));
  return router;
}
