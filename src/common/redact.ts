/**
 * Write-only values (SIP secrets, their digests, keys) must never reach an error message, a field
 * message or a log line. graphql-js echoes the offending value in its coercion and validation
 * messages ("got invalid value { …, secret: "…" }", "String cannot represent a non string value:
 * 123" for `secret: 123`), so every message that leaves the process passes through here: values are
 * redacted by the name of the field that holds them.
 */
export const REDACTED = "[redacted]";

const SENSITIVE = new Set(["secret", "ha1", "ha1b", "ha1sha256", "digest", "digests", "password", "key", "apikey", "token", "authorization", "signingsecret"]);

/** `secret`, `ha1_sha256`, `ha1Sha256`, `apiKey`, `newSecret` … (case and underscores ignored; a `…Secret` suffix counts). */
export function isSensitiveName(name: string): boolean {
  const n = name.replace(/_/g, "").toLowerCase();
  return SENSITIVE.has(n) || n.endsWith("secret") || n.endsWith("password");
}

/**
 * End (exclusive) of the value printed at `start`: a quoted string (JSON or GraphQL escapes, or a
 * block string), a bracketed list or object (nesting and strings respected), or a bare token.
 */
export function valueEnd(text: string, start: number): number {
  const open = text[start];
  if (open === '"') {
    if (text.startsWith('"""', start)) {
      const close = text.indexOf('"""', start + 3);
      return close === -1 ? text.length : close + 3;
    }
    for (let i = start + 1; i < text.length; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') return i + 1;
    }
    return text.length;
  }
  if (open === "{" || open === "[") {
    let depth = 0;
    for (let i = start; i < text.length; i++) {
      const c = text[i];
      if (c === '"') i = valueEnd(text, i) - 1;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return text.length;
  }
  let i = start;
  while (i < text.length && !/[\s,;{}[\]()]/.test(text[i])) i++;
  return i;
}

/** Replaces `value` where it stands as a whole token (so a secret "1" does not eat every digit 1). */
function replaceToken(text: string, value: string): string {
  if (!value) return text;
  let out = "";
  let from = 0;
  for (let at = text.indexOf(value); at !== -1; at = text.indexOf(value, at + value.length)) {
    const before = text[at - 1];
    const after = text[at + value.length];
    const bounded = (c: string | undefined) => c === undefined || !/[\w$]/.test(c);
    if (bounded(before) && bounded(after)) {
      out += text.slice(from, at) + REDACTED;
      from = at + value.length;
    }
  }
  return out + text.slice(from);
}

/**
 * graphql-js prints the whole value of a variable that does not coerce. A secret-bearing input
 * sent as one string (`$i` = "tenantId=1 extensionNumber=3007 secret=…") names no field to redact
 * by, so no variable's value is ever echoed: the message keeps the variable, the path and the
 * reason, and every place the value appears says [redacted].
 */
function redactVariableValue(message: string): string {
  const m = /^Variable "\$[_A-Za-z][_0-9A-Za-z]*" got invalid value /.exec(message);
  if (!m) return message;
  const start = m[0].length;
  const value = message.slice(start, valueEnd(message, start));
  return value === REDACTED ? message : replaceToken(message, value);
}

/**
 * Redacts the write-only values a message prints: every `name: value` (inspect or JSON style) whose
 * name is sensitive, and the value graphql-js reports as invalid at a sensitive path
 * (`got invalid value X at "input.secret"; … X`), wherever X appears again.
 */
export function redactMessage(message: string): string {
  let text = redactVariableValue(message);
  // 1. Objects printed with their fields: `secret: "…"`, `"secret": "…"`.
  const pair = /(["']?)([A-Za-z_][A-Za-z0-9_]*)\1\s*:\s*/g;
  let out = "";
  let from = 0;
  for (let m = pair.exec(text); m; m = pair.exec(text)) {
    if (!isSensitiveName(m[2])) continue;
    const start = m.index + m[0].length;
    if (start >= text.length || text.startsWith(REDACTED, start) || text.startsWith(`"${REDACTED}"`, start)) continue;
    const end = valueEnd(text, start);
    if (end === start) continue;
    out += text.slice(from, start) + `"${REDACTED}"`;
    from = end;
    pair.lastIndex = end;
  }
  text = out + text.slice(from);
  // 2. A value reported at a sensitive path.
  const invalid = /got invalid value /g;
  for (let m = invalid.exec(text); m; m = invalid.exec(text)) {
    const start = m.index + m[0].length;
    const end = valueEnd(text, start);
    const path = /^ at "([^"]*)"/.exec(text.slice(end));
    if (path && path[1].split(/[.[\]]/).some(isSensitiveName)) {
      const value = text.slice(start, end);
      text = replaceToken(text, value);
      invalid.lastIndex = start;
    }
  }
  return text;
}

/**
 * For an error located in a document (a literal that failed validation): when the literal is the
 * value of a sensitive field (`secret: 123`), redacts its printed text wherever the message shows it.
 */
export function redactLiteralAt(message: string, body: string | undefined, positions: readonly number[] | undefined): string {
  if (!body || !positions?.length) return message;
  let text = message;
  for (const position of positions) {
    const before = body.slice(Math.max(0, position - 200), position);
    const name = /([_A-Za-z][_0-9A-Za-z]*)\s*:\s*$/.exec(before)?.[1];
    if (!name || !isSensitiveName(name)) continue;
    const literal = body.slice(position, valueEnd(body, position));
    text = replaceToken(text, literal);
  }
  return text;
}

/** Names of the variables a document passes to sensitive fields or arguments (`input: { secret: $s }`). */
export function sensitiveVariables(document: { definitions: readonly unknown[] } | undefined): Set<string> {
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (!node || typeof node !== "object") return;
    if (Array.isArray(node)) return node.forEach(walk);
    const n = node as { kind?: string; name?: { value?: string }; value?: { kind?: string; name?: { value?: string } } };
    if ((n.kind === "ObjectField" || n.kind === "Argument") && n.name?.value && isSensitiveName(n.name.value) && n.value?.kind === "Variable" && n.value.name?.value) {
      names.add(n.value.name.value);
    }
    for (const [k, v] of Object.entries(node)) if (k !== "loc" && v && typeof v === "object") walk(v);
  };
  walk(document?.definitions);
  return names;
}

/** Redacts `Variable "$s" got invalid value X…` where `$s` feeds a sensitive field. */
export function redactVariables(message: string, sensitive: ReadonlySet<string>): string {
  const m = /^Variable "\$([_A-Za-z][_0-9A-Za-z]*)" got invalid value /.exec(message);
  if (!m || !sensitive.has(m[1])) return message;
  const start = m[0].length;
  return replaceToken(message, message.slice(start, valueEnd(message, start)));
}

/**
 * Redacts `Variable "$s" got invalid value X…` when the document (its source text) passes `$s` to a
 * sensitive field or argument (`secret: $s`).
 */
export function redactVariableInSource(message: string, body: string | undefined): string {
  const m = /^Variable "\$([_A-Za-z][_0-9A-Za-z]*)" got invalid value /.exec(message);
  if (!m || !body) return message;
  const uses = new RegExp(`([_A-Za-z][_0-9A-Za-z]*)\\s*:\\s*\\$${m[1]}(?![_0-9A-Za-z])`, "g");
  for (let use = uses.exec(body); use; use = uses.exec(body)) {
    if (isSensitiveName(use[1])) return redactVariables(message, new Set([m[1]]));
  }
  return message;
}
