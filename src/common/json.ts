/**
 * JSON input without prototype keys. `JSON.parse` keeps a `"__proto__"` key as an own property;
 * the first `Object.assign(new Input(), raw)` then swaps the input's prototype for the sender's
 * object, and validation (which reads the class from the prototype) passes values it never saw
 * (`expires: 1e12` was stored). Every JSON that arrives from outside goes through here (HTTP
 * bodies through `dropPrototypeKeys` after express.json), so no such key reaches a service.
 */

/** Whether a JSON text may hold a `__proto__` key: spelled out, or behind a `\u` escape. */
function mayHoldPrototypeKey(text: string | Buffer): boolean {
  return text.includes("__proto__") || text.includes("\\u");
}

/** Deletes every own `__proto__` key, at any depth (iterative: a deep document cannot overflow the stack). */
export function dropPrototypeKeys<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length) {
    const node = stack.pop();
    if (typeof node !== "object" || node === null) continue;
    if (Object.prototype.hasOwnProperty.call(node, "__proto__")) delete (node as Record<string, unknown>)["__proto__"];
    for (const child of Object.values(node)) if (typeof child === "object" && child !== null) stack.push(child);
  }
  return value;
}

/** `JSON.parse` for input from outside: the same value, without prototype keys. Throws as JSON.parse does. */
export function parseJson(text: string): unknown {
  const value = JSON.parse(text) as unknown;
  return mayHoldPrototypeKey(text) ? dropPrototypeKeys(value) : value;
}

/** For express.json's `verify`: marks a body that may hold a prototype key, for `dropPrototypeKeysOf`. */
export function markPrototypeKeys(req: object, _res: unknown, body: Buffer): void {
  if (mayHoldPrototypeKey(body)) (req as { prototypeKeys?: boolean }).prototypeKeys = true;
}

/** Own properties only, never `__proto__`: `Object.assign` for input classes, which sets the prototype from such a key. */
export function assignOwn<T extends object>(target: T, source: unknown): T {
  if (typeof source !== "object" || source === null) return target;
  for (const [key, value] of Object.entries(source)) {
    if (key !== "__proto__") (target as Record<string, unknown>)[key] = value;
  }
  return target;
}
