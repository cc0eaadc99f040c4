/** @type {import('jest').Config} */
const swc = [
  "@swc/jest",
  {
    jsc: {
      target: "es2022",
      parser: { syntax: "typescript", decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    },
    module: { type: "commonjs" },
  },
];

module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // test/ha/ is the opt-in high-availability suite: `npm run test:ha` (jest.ha.config.js), not `npm test`.
  testPathIgnorePatterns: ["/node_modules/", "<rootDir>/test/ha/"],
  transform: { "^.+\\.ts$": swc },
  setupFiles: ["<rootDir>/test/support/setup-env.ts"],
  globalSetup: "<rootDir>/test/support/global-setup.ts",
  globalTeardown: "<rootDir>/test/support/global-teardown.ts",
  testTimeout: 60_000,
  // Three on the 2-core machine: the suites wait on SIP timers, phones, media and child processes
  // much of the time (two workers kept the cores 64 % busy on average): 575 s → 459 s for the
  // PostgreSQL + Redis pass, measured 2026-12-07 (README "Tests").
  maxWorkers: 3,
  // PGlite instances are large; recycle a worker that grew past this.
  workerIdleMemoryLimit: "1536MB",
};
