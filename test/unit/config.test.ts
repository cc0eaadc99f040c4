import { ConfigError, loadConfig } from "../../src/config/config";

describe("loadConfig", () => {
  it("has the contract's defaults", () => {
    const c = loadConfig({});
    expect(c.port).toBe(4000);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.redisUrl).toBeUndefined();
    expect(c.dataDir).toMatch(/\.data$/);
    expect(c.migrateOnStart).toBe(true);
  });

  it("reads MIGRATE_ON_START=false and PORT", () => {
    const c = loadConfig({ MIGRATE_ON_START: "false", PORT: "8080" });
    expect(c.migrateOnStart).toBe(false);
    expect(c.port).toBe(8080);
  });

  it("reads PHONE_WS_URL, the engine's WebSocket listener the softphone page uses", () => {
    expect(loadConfig({}).phoneWsUrl).toBeUndefined();
    expect(loadConfig({ PHONE_WS_URL: "wss://sip.example.com:8443/ws" }).phoneWsUrl).toBe("wss://sip.example.com:8443/ws");
  });

  it.each([
    [{ PORT: "http" }, /PORT/],
    [{ PORT: "70000" }, /PORT/],
    [{ MIGRATE_ON_START: "maybe" }, /MIGRATE_ON_START/],
    [{ ADMIN_API_KEY: "short" }, /ADMIN_API_KEY/],
    [{ ENGINE_API_KEY: "short" }, /ENGINE_API_KEY/],
    [{ DATABASE_SCHEMA: "Robert'); DROP" }, /DATABASE_SCHEMA/],
    [{ PHONE_WS_URL: "http://127.0.0.1:8080" }, /PHONE_WS_URL must be a ws:\/\/ or wss:\/\/ URL/],
    [{ PHONE_WS_URL: "127.0.0.1:8080" }, /PHONE_WS_URL is not a valid URL/],
  ])("fails fast on %j", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
