import { createHash } from "node:crypto";
import fs from "node:fs";
import Module from "node:module";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";

/**
 * V8's code cache for the server's CommonJS modules (ours and node_modules'), kept on disk between
 * starts: a start then deserialises compiled code instead of parsing and compiling some 1,500 files
 * again — the largest single cost of a start after the database's own (measured with --cpu-prof:
 * module loading was over half of a start's CPU). Node 22 does this itself
 * (module.enableCompileCache); on Node 20 the server does it here, in the way v8-compile-cache did.
 *
 * One file holds every module's cached data, keyed by file name and checked against a hash of the
 * module's source, so a rebuilt or upgraded file is compiled afresh (and cached again). A module
 * that uses dynamic import() is left to Node (a vm.Script could not resolve it). The file is written
 * after the server is ready (save()), atomically (a temporary file renamed), so servers starting
 * together never read half a file; any failure leaves the start as it would be without the cache.
 *
 * The same file keeps where each require() resolved to (the requiring directory and the request ->
 * the file): Node's resolution tries file after file (extensions, package.json, exports maps) and was
 * about a quarter of loading the modules (4,300 resolutions, 0.3–0.5 s of CPU). A remembered answer
 * is used only while the installed packages are the ones it was made with (node_modules/.package-lock.json,
 * which npm rewrites on every install, unchanged in size and time) and while its file exists; a
 * request it does not know, or one with options (require.resolve's paths), goes through Node.
 */
interface Entry {
  hash: string;
  data: Buffer;
}

const FORMAT = 2;

interface Stored {
  format: number;
  modules: Map<string, Entry>;
  /** What the resolutions were made with (see packagesStamp); resolutions of another are dropped. */
  packages: string;
  resolved: Map<string, string>;
}

export class CompileCache {
  private readonly entries = new Map<string, Entry>();
  /** Modules compiled this start without usable cached data: their data is made at save(). */
  private readonly fresh = new Map<string, { hash: string; script: vm.Script }>();
  /** "requiring directory\0request" -> file, from earlier starts and this one. */
  private readonly resolved = new Map<string, string>();
  private resolvedChanged = false;
  private readonly file: string;
  private readonly packages: string;
  private original?: (content: string, filename: string) => unknown;

  constructor(dir: string, packagesStamp: string) {
    this.file = path.join(dir, `v8-${process.version}-${process.arch}-${FORMAT}.bin`);
    this.packages = packagesStamp;
  }

  /** Loads the cache file (if any) and compiles every later require() through it. */
  install(): void {
    try {
      const stored = v8.deserialize(fs.readFileSync(this.file)) as Stored;
      if (stored?.format === FORMAT && stored.modules instanceof Map && stored.resolved instanceof Map) {
        for (const [name, entry] of stored.modules) this.entries.set(name, entry);
        if (stored.packages === this.packages) for (const [key, file] of stored.resolved) this.resolved.set(key, file);
        else this.resolvedChanged = true;
      }
    } catch {
      // none yet, or unreadable: compiled afresh and written at save()
    }
    this.installResolver();
    const proto = Module.prototype as unknown as { _compile(content: string, filename: string): unknown; require(id: string): unknown };
    const original = (this.original = proto._compile);
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const cache = this;
    proto._compile = function (this: Module & { require(id: string): unknown }, content: string, filename: string) {
      if (!filename.endsWith(".js") || content.includes("import(")) return original.call(this, content, filename);
      return cache.compile(this, content, filename);
    };
  }

  private installResolver(): void {
    type Resolve = (request: string, parent: Module | null | undefined, isMain: boolean, options?: unknown) => string;
    const statics = Module as unknown as { _resolveFilename: Resolve };
    const original: Resolve = statics._resolveFilename;
    const resolved = this.resolved;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const cache = this;
    statics._resolveFilename = function (this: unknown, request, parent, isMain, options) {
      // Built-ins, the main module and require.resolve with options: Node's own way.
      if (isMain || options !== undefined || !parent?.path || request.startsWith("node:") || Module.isBuiltin(request)) {
        return original.call(this, request, parent, isMain, options);
      }
      const key = `${parent.path}\0${request}`;
      const known = resolved.get(key);
      if (known !== undefined && fs.existsSync(known)) return known;
      const file = original.call(this, request, parent, isMain, options);
      if (path.isAbsolute(file)) {
        resolved.set(key, file);
        cache.resolvedChanged = true;
      }
      return file;
    };
  }

  private compile(module: Module & { require(id: string): unknown }, content: string, filename: string): unknown {
    const hash = createHash("sha1").update(content).digest("base64");
    const entry = this.entries.get(filename);
    const cachedData = entry && entry.hash === hash ? entry.data : undefined;
    const script = new vm.Script(Module.wrap(content.startsWith("#!") ? `//${content}` : content), { filename, cachedData });
    if (cachedData === undefined || script.cachedDataRejected) this.fresh.set(filename, { hash, script });
    const fn = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    const statics = Module as unknown as { _resolveFilename(request: string, parent: Module, isMain: boolean, options?: unknown): string; _extensions: unknown; _cache: unknown };
    const moduleRequire = Object.assign((id: string) => module.require(id), {
      resolve: Object.assign((request: string, options?: unknown) => statics._resolveFilename(request, module, false, options), {
        paths: (request: string) => (Module as unknown as { _resolveLookupPaths(r: string, m: Module): string[] | null })._resolveLookupPaths(request, module),
      }),
      main: require.main,
      extensions: statics._extensions,
      cache: statics._cache,
    });
    return fn.call(module.exports, module.exports, moduleRequire, module, filename, path.dirname(filename));
  }

  /** Writes the cached data of the modules compiled afresh since the last save; never throws. */
  save(): void {
    if (this.fresh.size === 0 && !this.resolvedChanged) return;
    try {
      for (const [name, { hash, script }] of this.fresh) this.entries.set(name, { hash, data: script.createCachedData() });
      this.fresh.clear();
      this.resolvedChanged = false;
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      const temporary = `${this.file}.${process.pid}.tmp`;
      const stored: Stored = { format: FORMAT, modules: this.entries, packages: this.packages, resolved: this.resolved };
      fs.writeFileSync(temporary, v8.serialize(stored));
      fs.renameSync(temporary, this.file);
    } catch {
      // a read-only checkout: starts stay as fast as without the cache
    }
  }
}

let installed: CompileCache | undefined;

/**
 * Installs the cache in node_modules/.cache/pbx-compile of the checkout (where tools keep their
 * caches), unless PBX_COMPILE_CACHE=off. Call before requiring anything heavy.
 */
export function installCompileCache(root: string): CompileCache | undefined {
  if (installed || process.env.PBX_COMPILE_CACHE === "off") return installed;
  installed = new CompileCache(path.join(root, "node_modules", ".cache", "pbx-compile"), packagesStamp(root));
  installed.install();
  return installed;
}

/**
 * Changes whenever npm installs or removes a package (it rewrites node_modules/.package-lock.json
 * then), or node is told to resolve differently (export conditions, symlinks, NODE_PATH).
 */
function packagesStamp(root: string): string {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].filter((arg) => /^(-C|--conditions|--preserve-symlinks)/.test(arg));
  const resolving = [...flags, process.env.NODE_PATH ?? ""].join(" ");
  try {
    const stat = fs.statSync(path.join(root, "node_modules", ".package-lock.json"));
    return `${stat.size}:${stat.mtimeMs}:${resolving}`;
  } catch {
    return `none:${resolving}`;
  }
}

/** The checkout's root (this file is dist/src/server/compile-cache.js there). */
export const CHECKOUT_ROOT = path.resolve(__dirname, "../../..");
