import fs from "node:fs";
import path from "node:path";
import { buildAppSchema, printAppSchema } from "../../src/graphql/schema";

describe("schema/schema.graphql", () => {
  it("is the SDL the resolvers produce (run `npm run schema:emit` after changing the GraphQL surface)", async () => {
    const committed = fs.readFileSync(path.join(__dirname, "../../schema/schema.graphql"), "utf8");
    expect(printAppSchema(await buildAppSchema())).toBe(committed);
  });
});
