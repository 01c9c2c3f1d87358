import { defineConfig } from 'vitest/config';

// `npm run test:scaffold`: issue 10's trial end to end (a service added by `npm run cli -- new
// service`, run under `npm start` in a copy of the repository); minutes, so not in `npm test`.
export default defineConfig({
  test: {
    include: ['tests/scaffold/**/*.e2e.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
