import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Run once, in the SQLite project: tests that touch no database, and the admin CLI's own suite,
// which works on prepared SQLite files (the CLI on PostgreSQL is in the end-to-end and multi-instance tests).
const SQLITE_PROJECT_ONLY = [
  'tests/config.test.ts',
  'tests/database-url.test.ts',
  'tests/key-generation.test.ts',
  'tests/http.test.ts',
  'tests/statement-cache.test.ts',
  'tests/group-commit.test.ts',
  'tests/startup-failure.test.ts',
  'tests/package-types.test.ts',
  'tests/cli-keys.test.ts',
  'tests/cli-clients.test.ts',
  'tests/cli-db.test.ts',
  'tests/cli-db-copy.test.ts',
  'tests/cli-invocation.test.ts',
  'tests/cli-server.test.ts',
  'tests/logging.test.ts',
  'tests/http-hardening.test.ts',
  'tests/openapi.test.ts',
  'tests/property.test.ts',
  'tests/crash-safety.test.ts',
  'tests/startup-listener.test.ts',
  'tests/standalone-start.test.ts',
  'tests/key-maintenance.test.ts',
  'tests/database-outage.test.ts',
];

// The course grader's timings are a contract (tests/grader-start.test.ts): checked first, alone,
// with no other test file sharing the cores with the server's start.
const GRADER_START = ['tests/grader-start.test.ts'];

export default defineConfig({
  test: {
    // The whole route and store suite runs twice: on SQLite, and on PostgreSQL (tests/database.ts).
    projects: [
      { extends: true, test: { name: 'grader-start', include: GRADER_START, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'sqlite', include: ['tests/**/*.test.ts'], exclude: GRADER_START, env: { TEST_DATABASE: 'sqlite' }, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'postgres', include: ['tests/**/*.test.ts'], exclude: [...SQLITE_PROJECT_ONLY, ...GRADER_START], env: { TEST_DATABASE: 'postgres' }, sequence: { groupOrder: 1 } } },
    ],
    // The end-to-end tests run the built server, so the build comes first.
    globalSetup: ['tests/global-setup.ts'],
    setupFiles: ['tests/pregenerated-rsa-keys.ts'],
    // Vitest's default, one worker fewer than the cores, is a single worker on two cores, idle
    // while the tests wait on the servers, processes and databases they drive.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 30_000,
    hookTimeout: 60_000,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts', 'plugins/**/*.ts', 'routes/**/*.ts'],
      // Run only as separate processes (the end-to-end and multi-instance tests), where in-process coverage cannot see them.
      exclude: ['src/server/server.ts', 'src/server/standalone.ts', 'src/server/cluster.ts'],
      reporter: ['text', 'json-summary'],
      thresholds: { lines: 98.5, branches: 95 },
    },
  },
});
