import { defineConfig } from 'vitest/config';

// Tests that touch no database run once, in the SQLite project.
const DATABASE_FREE_TESTS = ['tests/config.test.ts', 'tests/database-url.test.ts', 'tests/key-generation.test.ts', 'tests/http.test.ts', 'tests/startup-failure.test.ts', 'tests/package-types.test.ts'];

export default defineConfig({
  test: {
    // The whole route and store suite runs twice: on SQLite, and on PostgreSQL (tests/database.ts).
    projects: [
      { extends: true, test: { name: 'sqlite', env: { TEST_DATABASE: 'sqlite' } } },
      { extends: true, test: { name: 'postgres', exclude: DATABASE_FREE_TESTS, env: { TEST_DATABASE: 'postgres' } } },
    ],
    include: ['tests/**/*.test.ts'],
    // The end-to-end tests run the built server, so the build comes first.
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts', 'plugins/**/*.ts', 'routes/**/*.ts'],
      // Runs only as a separate process (the end-to-end tests), where in-process coverage cannot see it.
      exclude: ['src/server.ts'],
      reporter: ['text', 'json-summary'],
      thresholds: { lines: 97, branches: 94 },
    },
  },
});
