/**
 * The portable regular-expression subset of outbound routes (contract §11): what a carrier-grade
 * engine (PostgreSQL's ARE, Kamailio's POSIX regex, JavaScript) all read alike. Anchored with ^…$;
 * inside: digits, the escaped literals \+ \* \#, digit classes […] (digits and ranges), ., \d,
 * groups ( ), alternation |, and the quantifiers ? * + {m} {m,n}.
 */

export const MATCH_MAX_LENGTH = 255;
export const TRANSFORM_MAX_LENGTH = 64;

/** Why `match` is outside the subset, or null; with the number of capturing groups when valid. */
export function checkMatch(match: string): { error: string } | { groups: number } {
  if (match.length === 0 || match.length > MATCH_MAX_LENGTH) return { error: `The match must be 1 to ${MATCH_MAX_LENGTH} characters.` };
  if (!match.startsWith("^") || !match.endsWith("$") || match.endsWith("\\$")) return { error: "The match must be anchored: start with ^ and end with $." };
  const body = match.slice(1, -1);
  let groups = 0;
  let depth = 0;
  let canQuantify = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (/[0-9.]/.test(c)) {
      canQuantify = true;
    } else if (c === "\\") {
      const n = body[i + 1];
      if (n === undefined || !"+*#d".includes(n)) return { error: `Only \\+, \\*, \\# and \\d may be escaped (at ${i + 2}).` };
      i++;
      canQuantify = true;
    } else if (c === "[") {
      const end = body.indexOf("]", i + 1);
      const inside = end < 0 ? "" : body.slice(i + 1, end);
      if (end < 0 || !/^([0-9](-[0-9])?)+$/.test(inside)) return { error: `A class [...] may hold digits and digit ranges only (at ${i + 2}).` };
      for (const m of inside.matchAll(/([0-9])-([0-9])/g)) if (m[1] > m[2]) return { error: `The range ${m[0]} is reversed.` };
      i = end;
      canQuantify = true;
    } else if (c === "(") {
      if (body[i + 1] === "?") return { error: `Only plain groups ( ) are allowed (at ${i + 2}).` };
      depth++;
      groups++;
      canQuantify = false;
    } else if (c === ")") {
      if (depth === 0) return { error: `An unmatched ) (at ${i + 2}).` };
      if (body[i - 1] === "(") return { error: `An empty group (at ${i + 1}).` };
      depth--;
      canQuantify = true;
    } else if (c === "|") {
      canQuantify = false;
    } else if (c === "?" || c === "*" || c === "+") {
      if (!canQuantify) return { error: `The quantifier ${c} follows nothing it can repeat (at ${i + 2}).` };
      canQuantify = false;
    } else if (c === "{") {
      const m = /^\{([0-9]{1,2})(,([0-9]{1,2}))?\}/.exec(body.slice(i));
      if (!m) return { error: `A quantifier {m} or {m,n} with numbers up to 99 (at ${i + 2}).` };
      if (!canQuantify) return { error: `The quantifier ${m[0]} follows nothing it can repeat (at ${i + 2}).` };
      if (m[3] !== undefined && Number(m[3]) < Number(m[1])) return { error: `In ${m[0]} the maximum is below the minimum.` };
      i += m[0].length - 1;
      canQuantify = false;
    } else {
      return { error: `The character ${JSON.stringify(c)} is outside the allowed subset (at ${i + 2}).` };
    }
  }
  if (depth !== 0) return { error: "An unclosed group (." };
  if (groups > 9) return { error: "At most 9 groups." };
  try {
    new RegExp(match);
  } catch {
    return { error: "The match is not a valid regular expression." };
  }
  return { groups };
}

/** Why `transform` is invalid for a match with `groups` groups, or null. */
export function checkTransform(transform: string, groups: number): string | null {
  if (transform.length === 0 || transform.length > TRANSFORM_MAX_LENGTH) return `The transform must be 1 to ${TRANSFORM_MAX_LENGTH} characters.`;
  if (!/^(\+|[0-9*#]|\\[1-9])+$/.test(transform)) {
    return "The transform may hold a leading +, digits, * and #, and \\1 to \\9 for the match's groups.";
  }
  if (transform.indexOf("+", 1) > 0) return "A + may only lead the transform.";
  for (const m of transform.matchAll(/\\([1-9])/g)) if (Number(m[1]) > groups) return `The transform uses \\${m[1]} but the match has ${groups} group${groups === 1 ? "" : "s"}.`;
  return null;
}

/** What the engine sends for `dialled` (the test's and the README's model of regexp_replace). */
export function applyRoute(match: string, transform: string, dialled: string): string | null {
  const m = new RegExp(match).exec(dialled);
  if (!m) return null;
  return transform.replace(/\\([1-9])/g, (_, n: string) => m[Number(n)] ?? "");
}
