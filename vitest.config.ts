import { configDefaults, defineConfig } from 'vitest/config';

// Files that create logical replication subscriptions. Their table-sync workers hold a writing
// transaction open for a whole initial copy, and the event feed serves only rows older than every
// running transaction of the cluster, so on a shared cluster they would hold back the feeds of
// every other file: they get a cluster of their own (the global setup runs once per project).
const replicating = ['services/reporting/test/**/*.test.ts', 'tests/system/hostile-input.test.ts'];

// One embedded PostgreSQL cluster per project, started only when the project has files to run;
// each test file gets fresh databases from templates.
const globalSetup = ['packages/platform/src/testing/global-setup.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          globalSetup,
          include: ['registry/test/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...replicating],
        },
      },
      { extends: true, test: { name: 'reporting', include: replicating, globalSetup } },
    ],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 120_000,
    allowOnly: !process.env.CI,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
