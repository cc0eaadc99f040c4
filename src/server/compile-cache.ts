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
 */
interface Entry {
  hash: string;
  data: Buffer;
}

const FORMAT = 1;

export class CompileCache {
  private readonly entries = new Map<string, Entry>();
  /** Modules compiled this start without usable cached data: their data is made at save(). */
  private readonly fresh = new Map<string, { hash: string; script: vm.Script }>();
  private readonly file: string;
  private original?: (content: string, filename: string) => unknown;

  constructor(dir: string) {
    this.file = path.join(dir, `v8-${process.version}-${process.arch}-${FORMAT}.bin`);
  }

  /** Loads the cache file (if any) and compiles every later require() through it. */
  install(): void {
    try {
      const stored = v8.deserialize(fs.readFileSync(this.file)) as Map<string, Entry>;
      if (stored instanceof Map) for (const [name, entry] of stored) this.entries.set(name, entry);
    } catch {
      // none yet, or unreadable: compiled afresh and written at save()
    }
    const proto = Module.prototype as unknown as { _compile(content: string, filename: string): unknown; require(id: string): unknown };
    const original = (this.original = proto._compile);
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const cache = this;
    proto._compile = function (this: Module & { require(id: string): unknown }, content: string, filename: string) {
      if (!filename.endsWith(".js") || content.includes("import(")) return original.call(this, content, filename);
      return cache.compile(this, content, filename);
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
    if (this.fresh.size === 0) return;
    try {
      for (const [name, { hash, script }] of this.fresh) this.entries.set(name, { hash, data: script.createCachedData() });
      this.fresh.clear();
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      const temporary = `${this.file}.${process.pid}.tmp`;
      fs.writeFileSync(temporary, v8.serialize(this.entries));
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
  installed = new CompileCache(path.join(root, "node_modules", ".cache", "pbx-compile"));
  installed.install();
  return installed;
}

/** The checkout's root (this file is dist/src/server/compile-cache.js there). */
export const CHECKOUT_ROOT = path.resolve(__dirname, "../../..");
