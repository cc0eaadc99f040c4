import { Router, type Request, type Response } from "express";
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../common/logger";

/**
 * Where the page's own files are. They sit next to this module when it runs from source (tests);
 * tsc compiles only TypeScript, so a compiled build (dist/, a test build) reads them from the
 * source tree it was built from: the nearest ancestor holding src/wallboard/assets.
 */
export function assetDirs(moduleDir: string, name: string): string[] {
  const dirs = [path.join(moduleDir, "assets")];
  for (let dir = path.dirname(moduleDir); ; dir = path.dirname(dir)) {
    dirs.push(path.join(dir, "src", name, "assets"));
    if (path.dirname(dir) === dir) return dirs;
  }
}

const PAGE_FILES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "wallboard.js": "text/javascript; charset=utf-8",
  "wallboard.css": "text/css; charset=utf-8",
};

interface Asset {
  body: Buffer;
  type: string;
}

/** graphql-ws's own browser build (UMD, defines `graphqlWs`); its exports map does not name it, so it is found beside the entry point. */
export function graphqlWsBrowserBuild(): string {
  return path.resolve(path.dirname(require.resolve("graphql-ws")), "../umd/graphql-ws.min.js");
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(PAGE_FILES)) assets.set(name, { body: fs.readFileSync(path.join(dir, name)), type });
  assets.set("graphql-ws.js", { body: fs.readFileSync(graphqlWsBrowserBuild()), type: "text/javascript; charset=utf-8" });
  return assets;
}

const HOST = /^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$/;

/**
 * Only this origin: scripts, styles and fetches from 'self', and the WebSocket back to the same host
 * (named explicitly, as older browsers do not count ws: as 'self'). No inline code, no framing,
 * and no form submission, so a key can never travel in a URL even if the script failed to load.
 */
export function contentSecurityPolicy(req: Request, fonts = false): string {
  const host = req.get("host");
  const socket = host && HOST.test(host) ? ` ${req.protocol === "https" ? "wss" : "ws"}://${host}` : "";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    ...(fonts ? ["font-src 'self' data:"] : []),
    `connect-src 'self'${socket}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * GET /wallboard: a static page and a small script, no build step and nothing from another origin.
 * The page asks for an API key (kept in sessionStorage), reads the tenant's queues over GraphQL and
 * follows them over graphql-ws on /graphql.
 */
export function createWallboardRouter(log: Logger): Router {
  const router = Router();
  const dir = assetDirs(__dirname, "wallboard").find((candidate) => fs.existsSync(path.join(candidate, "index.html")));
  if (!dir) {
    // The API does not depend on the page: a build shipped without it still serves everything else.
    log.error("the wallboard's files are missing from this installation; /wallboard answers 503");
    router.use((_req, res) => void res.status(503).json({ message: "The wallboard is not installed with this build." }));
    return router;
  }
  const assets = loadAssets(dir);
  const send = (name: string) => (req: Request, res: Response) => {
    const asset = assets.get(name);
    if (!asset) return void res.status(404).json({ message: "Not Found" });
    res.set({
      "content-type": asset.type,
      "content-security-policy": contentSecurityPolicy(req),
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache",
    });
    res.send(asset.body);
  };
  router.get("/", send("index.html"));
  router.get("/:file", (req, res) => send(String(req.params.file))(req, res));
  return router;
}
