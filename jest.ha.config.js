/**
 * `npm run test:ha`: the opt-in high-availability suites (test/ha/), e.g. Patroni + etcd + HAProxy
 * run for real. Slow (minutes) and needing packages CI does not install, they are kept out of
 * `npm test` (jest.config.js ignores test/ha/) and run only here.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports, no-undef -- a CommonJS config, like jest.config.js
const base = require("./jest.config.js");

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ["<rootDir>/test/ha"],
  testPathIgnorePatterns: ["/node_modules/"],
  testTimeout: 900_000,
  maxWorkers: 1,
};
