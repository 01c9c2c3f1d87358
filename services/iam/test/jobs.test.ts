import { describe, expect, it } from 'vitest';
import type { JobStatus } from '@archipelago/platform/jobs';
import { asPrincipal, OPERATOR } from '@archipelago/platform/testing/credentials';
import { startIam } from './helpers.ts';

describe('iam jobs', async () => {
  const { app: server, db } = await startIam();
  const app = asPrincipal(server, OPERATOR);

  it('declares outbox pruning and the audit purge, and purges entries past retention when run', async () => {
    const listed = (await app.inject({ url: '/internal/v1/jobs' })).json<{ jobs: JobStatus[] }>().jobs;
    expect(listed.map(({ name, schedule, lastRun }) => ({ name, schedule, lastRun }))).toEqual([
      { name: 'outbox.prune', schedule: '0 * * * *', lastRun: null },
      { name: 'idempotency.prune', schedule: '15 * * * *', lastRun: null },
      { name: 'audit.purge', schedule: '30 3 * * *', lastRun: null },
    ]);
    await db.insertInto('auth_audit_log').values({ event: 'login.success', email: 'ancient@example.com', occurred_at: new Date(Date.now() - 3 * 365 * 86_400_000) }).execute();
    const run = await app.inject({ method: 'POST', url: '/internal/v1/jobs/audit.purge/run' });
    expect(run.statusCode, run.body).toBe(200);
    expect(run.json()).toMatchObject({ job: { name: 'audit.purge', lastRun: { trigger: 'manual', outcome: 'succeeded', result: { purged: 1 } } } });
    expect(await db.selectFrom('auth_audit_log').select('id').where('email', '=', 'ancient@example.com').execute()).toEqual([]);
  });
});
