import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobDefinition } from '@archipelago/registry';
import { ConfigError } from '../src/config.ts';
import { withOwnerDatabase } from '../src/databases.ts';
import { createDatabase } from '../src/db.ts';
import { AppError } from '../src/errors.ts';
import { createHttpServer } from '../src/http.ts';
import { effectiveSchedule, registerJobRoutes, startJobs, type JobHandler, type Jobs } from '../src/jobs/index.ts';
import { StartupError } from '../src/startup.ts';
import { asPrincipal, OPERATOR, testCredentials } from '../src/testing/credentials.ts';
import { useTestDatabase } from '../src/testing/index.ts';

const everySecond: JobDefinition = { name: 'test.tick', schedule: '* * * * * *', description: 'records its tick' };
const manualOnly: JobDefinition = { name: 'test.manual', schedule: '0 0 1 1 *', description: 'runs when asked' };

describe('jobs', async () => {
  const database = await useTestDatabase('core');
  await withOwnerDatabase(database, (db) => sql`CREATE TABLE job_ticks (tick timestamptz NOT NULL, instance text NOT NULL)`.execute(db));
  // A second instance of the service: its own pool on the same database.
  const other = createDatabase<unknown>(database.appUrl, { max: 4, applicationName: 'test-second-instance' });
  const running: Jobs[] = [];
  afterAll(async () => {
    await Promise.all(running.map((jobs) => jobs.stop()));
    await other.destroy();
  });
  const start = async (db: Kysely<unknown>, instance: string, declared: readonly JobDefinition[], handlers: Record<string, JobHandler>, env = {}) => {
    const jobs = await startJobs({ service: 'core', db, declared, handlers, instance, env });
    running.push(jobs);
    return jobs;
  };
  const recordTick = (db: Kysely<unknown>, instance: string): JobHandler => async ({ tick }) => {
    await sql`INSERT INTO job_ticks (tick, instance) VALUES (${tick}, ${instance})`.execute(db);
    return { instance };
  };
  const ticks = async () =>
    (await sql<{ tick: Date; runs: number }>`SELECT tick, count(*)::int AS runs FROM job_ticks GROUP BY tick ORDER BY tick`.execute(database.db)).rows;
  const until = async (condition: () => Promise<boolean>) => {
    for (let i = 0; i < 400 && !(await condition()); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(await condition()).toBe(true);
  };

  it('runs a job scheduled in two instances once per tick, and both report the same status', async () => {
    const a = await start(database.db, 'a', [everySecond], { 'test.tick': recordTick(database.db, 'a') });
    const b = await start(other, 'b', [everySecond], { 'test.tick': recordTick(other, 'b') });
    await until(async () => (await ticks()).length >= 3);
    await Promise.all([a.stop(), b.stop()]);
    const recorded = await ticks();
    expect(recorded.filter((tick) => tick.runs !== 1)).toEqual([]);
    expect(recorded.every((tick) => tick.tick.getMilliseconds() === 0)).toBe(true);

    const [status] = await a.list();
    expect(await b.list()).toEqual([status]);
    expect(status).toMatchObject({ name: 'test.tick', schedule: '* * * * * *', running: null, lastRun: { trigger: 'schedule', outcome: 'succeeded', error: null } });
    expect(['a', 'b']).toContain(status!.lastRun!.instance);
    expect(status!.lastRun!.result).toEqual({ instance: status!.lastRun!.instance });
    expect(Date.parse(status!.nextRunAt!)).toBeGreaterThan(Date.parse(status!.lastRun!.startedAt) - 1_000);
  });

  it('does not run a tick another instance has claimed', async () => {
    await sql`DELETE FROM job_ticks`.execute(database.db);
    // As if an instance had just run the tick two seconds from now (its clock ahead of ours).
    const claimed = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2_000);
    await sql`UPDATE job_status SET last_tick = ${claimed} WHERE job = 'test.tick'`.execute(database.db);
    const late = await start(database.db, 'late', [everySecond], { 'test.tick': recordTick(database.db, 'late') });
    await until(async () => (await ticks()).length >= 1);
    await late.stop();
    expect((await ticks())[0]!.tick.getTime()).toBeGreaterThan(claimed.getTime());
  });

  it('runs a job on demand, refuses a second run while the first holds the lock, and records a failure', async () => {
    let release!: () => void;
    let fail = false;
    const handler: JobHandler = async () => {
      if (fail) throw new Error('disk full');
      await new Promise<void>((resolve) => (release = resolve));
      return { done: true };
    };
    const a = await start(database.db, 'a', [manualOnly], { 'test.manual': handler });
    const b = await start(other, 'b', [manualOnly], { 'test.manual': handler });
    const first = a.run('test.manual');
    await until(async () => (await b.list())[0]!.running?.instance === 'a');
    const refused = await b.run('test.manual').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'CONFLICT' });
    release();
    expect(await first).toMatchObject({ running: null, lastRun: { trigger: 'manual', instance: 'a', outcome: 'succeeded', result: { done: true } } });

    fail = true;
    expect(await b.run('test.manual')).toMatchObject({ lastRun: { instance: 'b', outcome: 'failed', error: 'disk full', result: null } });
    expect(await a.list()).toEqual(await b.list());
    await expect(a.run('test.nothing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('serves the status and manual runs at /internal/v1/jobs', async () => {
    const jobs = await start(database.db, 'a', [manualOnly], { 'test.manual': async () => ({ ok: 1 }) });
    const server = await createHttpServer({ service: 'core', logger: false, credentials: testCredentials('core') });
    const app = asPrincipal(server, OPERATOR);
    registerJobRoutes(server, jobs);
    try {
      const run = await app.inject({ method: 'POST', url: '/internal/v1/jobs/test.manual/run' });
      expect(run.statusCode, run.body).toBe(200);
      expect(run.json()).toMatchObject({ job: { name: 'test.manual', lastRun: { outcome: 'succeeded', result: { ok: 1 } } } });
      const listed = await app.inject({ url: '/internal/v1/jobs' });
      expect(listed.json()).toEqual({ service: 'core', jobs: [run.json<{ job: unknown }>().job] });
      expect((await app.inject({ method: 'POST', url: '/internal/v1/jobs/Bad%20Name/run' })).json()).toMatchObject({ status: 400, errors: [{ field: 'params.name' }] });
      expect((await app.inject({ method: 'POST', url: '/internal/v1/jobs/test.unknown/run' })).statusCode).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('refuses to start when the registry and the handlers disagree', async () => {
    await expect(startJobs({ service: 'core', db: database.db, declared: [manualOnly], handlers: {} })).rejects.toThrow(
      new StartupError('core declares job(s) test.manual in the registry but registers no handler for them'),
    );
    await expect(startJobs({ service: 'core', db: database.db, declared: [], handlers: { 'test.extra': async () => undefined } })).rejects.toThrow(
      'core registers job(s) test.extra that the registry does not declare',
    );
  });

  it("takes a schedule override from the job's variable: a cron expression, HH:MM (UTC) or off", async () => {
    const reconcile: JobDefinition = { name: 'lookups.reconcile', schedule: '0 2 * * *', description: 'x', scheduleVariable: 'LOOKUP_RECONCILE_AT' };
    expect(effectiveSchedule(reconcile, {})).toBe('0 2 * * *');
    expect(effectiveSchedule(reconcile, { LOOKUP_RECONCILE_AT: '03:30' })).toBe('30 3 * * *');
    expect(effectiveSchedule(reconcile, { LOOKUP_RECONCILE_AT: '*/15 * * * *' })).toBe('*/15 * * * *');
    expect(effectiveSchedule(reconcile, { LOOKUP_RECONCILE_AT: 'off' })).toBeUndefined();
    expect(() => effectiveSchedule(reconcile, { LOOKUP_RECONCILE_AT: '25:00' })).toThrow(ConfigError);
    expect(() => effectiveSchedule(reconcile, { LOOKUP_RECONCILE_AT: '25:00' })).toThrow(/LOOKUP_RECONCILE_AT: must be a cron expression .* \(got "25:00"\)/);

    const off = await start(database.db, 'a', [reconcile], { 'lookups.reconcile': async () => undefined }, { LOOKUP_RECONCILE_AT: 'off' });
    expect(await off.list()).toMatchObject([{ name: 'lookups.reconcile', schedule: null, nextRunAt: null }]);
  });
});
