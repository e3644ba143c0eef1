import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
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
