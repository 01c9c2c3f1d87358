import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['registry/test/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
    // One embedded PostgreSQL cluster per run; each test file gets fresh databases from templates.
    globalSetup: ['packages/platform/src/testing/global-setup.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 120_000,
    allowOnly: !process.env.CI,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
