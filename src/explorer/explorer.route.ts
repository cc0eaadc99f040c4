import { Router, type Request, type RequestHandler, type Response } from "express";
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../common/logger";
import { assetDirs, contentSecurityPolicy, graphqlWsBrowserBuild } from "../wallboard/wallboard.route";

/** A file of an npm package, found beside its entry point (exports maps do not name these builds). */
function packageFile(pkg: string, file: string): string {
  let dir = path.dirname(require.resolve(pkg));
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return path.join(dir, file);
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

interface Asset {
  body: Buffer;
  type: string;
}

function loadAssets(dir: string): Map<string, Asset> {
  const files: Array<[string, string, string]> = [
    ["index.html", path.join(dir, "index.html"), "text/html; charset=utf-8"],
    ["explorer.js", path.join(dir, "explorer.js"), JS],
    ["explorer.css", path.join(dir, "explorer.css"), CSS],
    // GraphiQL's own browser build and its React 18 UMD builds, served from node_modules: no CDN.
    ["graphiql.min.js", packageFile("graphiql", "graphiql.min.js"), JS],
    ["graphiql.min.css", packageFile("graphiql", "graphiql.min.css"), CSS],
    ["react.production.min.js", packageFile("react", "umd/react.production.min.js"), JS],
    ["react-dom.production.min.js", packageFile("react-dom", "umd/react-dom.production.min.js"), JS],
    ["graphql-ws.js", graphqlWsBrowserBuild(), JS],
  ];
  return new Map(files.map(([name, file, type]) => [name, { body: fs.readFileSync(file), type }]));
}

/**
 * The GraphQL explorer: GraphiQL from its npm packages, the page on `GET /graphql` for a browser
 * (Accept prefers text/html, no `query` parameter) and its files under /graphiql/. Anything else on
 * /graphql (POST, GET with a query, a client asking for JSON) stays GraphQL over HTTP.
 */
export function createExplorer(log: Logger): { page: RequestHandler; assets: Router } {
  const assets = Router();
  const dir = assetDirs(__dirname, "explorer").find((candidate) => fs.existsSync(path.join(candidate, "index.html")));
  let files: Map<string, Asset> | null = null;
  try {
    if (dir) files = loadAssets(dir);
  } catch (error) {
    log.error({ err: error }, "the GraphQL explorer's files are missing: GET /graphql in a browser answers 503");
  }
  const send = (name: string, req: Request, res: Response) => {
    if (!files) return void res.status(503).json({ message: "The GraphQL explorer is not installed with this build." });
    const asset = files.get(name);
    if (!asset) return void res.status(404).json({ message: "Not Found" });
    res.set({
      "content-type": asset.type,
      "content-security-policy": contentSecurityPolicy(req, true),
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": name === "index.html" ? "no-cache" : "public, max-age=3600",
    });
    res.send(asset.body);
  };
  assets.get("/:file", (req, res) => send(String(req.params.file), req, res));
  const page: RequestHandler = (req, res, next) => {
    const wantsPage = req.method === "GET" && req.query.query === undefined && req.accepts(["application/graphql-response+json", "application/json", "text/html"]) === "text/html";
    if (!wantsPage) return next();
    send("index.html", req, res);
  };
  return { page, assets };
}
