import { parse, print, type GraphQLSchema } from "graphql";
import { buildAppSchema } from "../../src/graphql/schema";
import { mergeTree, normalizeSubscription, project, unionDocument, type CanonicalTree } from "../../src/subscriptions/selection";

let schema: GraphQLSchema;
beforeAll(async () => {
  schema = await buildAppSchema();
});

const normalize = (query: string, variableValues: Record<string, unknown> = {}) => normalizeSubscription({ schema, document: parse(query), variableValues });

describe("subscription selections", () => {
  it("documents that differ in aliases, fragments, order, directives and variables select the same canonical fields", () => {
    const plain = normalize(`subscription { registrationEvents { type extension { id extensionNumber } } }`)!;
    const variants = [
      `subscription { r: registrationEvents { t: type e: extension { n: extensionNumber id } } }`,
      `subscription S { registrationEvents { ...F } } fragment F on RegistrationEvent { extension { extensionNumber } type extension { id } }`,
      `subscription($skip: Boolean!) { registrationEvents { type occurredAt @skip(if: $skip) extension { id ... on Extension { extensionNumber } } } }`,
    ];
    const normalized = variants.map((query) => normalize(query, { skip: true })!);
    for (const n of normalized) {
      expect(n.feedKey).toBe(plain.feedKey);
      expect(print(unionDocument(n.tree))).toBe(print(unionDocument(plain.tree)));
    }
    // The shapes differ where the answers differ (aliases, order), and only there.
    expect(normalized.map((n) => n.shapeKey === plain.shapeKey)).toEqual([false, false, true]);
  });

  it("keeps root arguments in the feed (after aside) and tells nested arguments apart by value, variables substituted", () => {
    const a = normalize(`subscription($t: ID, $after: String) { activeCallEvents(tenantId: $t, after: $after) { type } }`, { t: "7", after: "12" })!;
    const b = normalize(`subscription { activeCallEvents(tenantId: 7) { type } }`)!;
    const c = normalize(`subscription { activeCallEvents(tenantId: 8) { type } }`)!;
    expect(a.feedKey).toBe(b.feedKey);
    expect(a.feedKey).not.toBe(c.feedKey);
    expect(a.feedKey).not.toContain("after");

    const one = normalize(`subscription($n: Int) { registrationEvents { extension { x: cdrs(first: $n) { totalCount } y: cdrs(first: 2) { totalCount } } } }`, { n: 1 })!;
    const fields = [...one.tree.get("registrationEvents")!.children!.get("extension")!.children!.keys()];
    expect(fields).toHaveLength(2);
    expect(fields.every((k) => /^cdrs_[0-9a-f]{16}$/.test(k))).toBe(true);
    const same = normalize(`subscription { registrationEvents { extension { z: cdrs(first: 1) { totalCount } } } }`)!;
    expect([...same.tree.get("registrationEvents")!.children!.get("extension")!.children!.keys()]).toEqual([fields.find((k) => one.shapeKey.includes(`"key":"x","canonical":"${k}"`))]);
  });

  it("projects each client's shape out of the union's result: its keys, its order, only what it asked", () => {
    const a = normalize(`subscription { r: registrationEvents { t: type extension { id } } }`)!;
    const b = normalize(`subscription { registrationEvents { extension { extensionNumber } k: type type } }`)!;
    const union: CanonicalTree = new Map();
    mergeTree(union, a.tree);
    mergeTree(union, b.tree);
    expect(print(unionDocument(union)).replace(/\s+/g, " ")).toBe("subscription { registrationEvents { extension { extensionNumber id } type } }");
    const data = { registrationEvents: { extension: { extensionNumber: "1001", id: "5" }, type: "REGISTERED" } };
    expect(JSON.stringify({ [a.root.key]: project(data[a.root.canonical as "registrationEvents"], a.root.sub) })).toBe('{"r":{"t":"REGISTERED","extension":{"id":"5"}}}');
    expect(JSON.stringify({ [b.root.key]: project(data.registrationEvents, b.root.sub) })).toBe('{"registrationEvents":{"extension":{"extensionNumber":"1001"},"k":"REGISTERED","type":"REGISTERED"}}');
  });

  it("leaves what it cannot share to run on its own", () => {
    expect(normalize(`query { me { role } }`)).toBeUndefined();
    expect(normalize(`subscription { registrationEvents { ...Missing } }`)).toBeUndefined();
  });
});
