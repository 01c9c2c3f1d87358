import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase, repositoryRoot, type HttpServer, peerUrls } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import type { ConsumerStats } from '@archipelago/platform/events';
import { freePort, useTestDatabase } from '@archipelago/platform/testing';
import { asPrincipal, OPERATOR, testCredentials, testOperatorKey } from '@archipelago/platform/testing/credentials';
import { asUser } from '@archipelago/platform/testing/identity';
import { buildApp as buildCore } from '../../services/core/src/app.ts';
import type { CoreDatabase } from '../../services/core/src/database.ts';
import { seed as seedCore } from '../../services/core/src/seed.ts';
import { buildIam } from '../../services/iam/src/app.ts';
import type { IamDatabase } from '../../services/iam/src/database.ts';
import { seedIam } from '../../services/iam/src/seed.ts';
import { buildApp as buildMasterdata } from '../../services/masterdata/src/app.ts';
import type { MasterdataDatabase } from '../../services/masterdata/src/database.ts';
import { seed as seedMasterdata } from '../../services/masterdata/src/seed.ts';

const run = promisify(execFile);
const ADMIN = { email: 'admin@example.com', password: 'correct horse battery staple' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Two instances of core against one core database, with the real IAM and masterdata: what each
// instance keeps in memory follows a broadcast, what core keeps in its database follows a group,
// and a job runs once per tick whichever instance wins it.
describe('two core instances', async () => {
  const iamDb = await useTestDatabase('iam');
  await seedIam(iamDb.db as Kysely<IamDatabase>, { adminEmail: ADMIN.email, adminPassword: ADMIN.password, passwordFile: '/nonexistent', say: () => undefined });
  const masterdataPort = await freePort(); // IAM asks masterdata about departments while serving
  const iam = await buildIam({ db: iamDb.db as Kysely<IamDatabase>, logger: false, databaseUrl: iamDb.appUrl, credentials: testCredentials('iam'), settings: { masterdataUrl: `http://127.0.0.1:${masterdataPort}` } });
  const iamUrl = await iam.listen({ host: '127.0.0.1', port: await freePort() });
  const signIn = async (email: string, password: string) => {
    const response = await iam.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
    expect(response.statusCode, response.body).toBe(200);
    return response.json<{ accessToken: string }>().accessToken;
  };
  const adminToken = await signIn(ADMIN.email, ADMIN.password);

  const master = await useTestDatabase('masterdata');
  await withOwnerDatabase(master, seedMasterdata);
  const masterdataServer = await buildMasterdata({ db: master.db as Kysely<MasterdataDatabase>, logger: false, databaseUrl: master.appUrl, credentials: testCredentials('masterdata'), peer: peerUrls('masterdata', { iam: iamUrl }), auth: createAuth({ sources: remoteAuthSources(iamUrl, { credentials: testCredentials('masterdata') }) }) });
  const masterdataUrl = await masterdataServer.listen({ host: '127.0.0.1', port: masterdataPort });
  const masterdata = asUser(masterdataServer, adminToken);

  const coreDb = await useTestDatabase('core');
  await withOwnerDatabase(coreDb, seedCore);
  const secondPool = createDatabase<CoreDatabase>(coreDb.appUrl, { max: 4, applicationName: 'test-core-b' });
  const logs: { instance: string; line: Record<string, unknown> }[] = [];
  // Each instance: its own pool, logger and port; the reconciliation every second, so ticks come fast.
  const startCore = async (instance: string, db: Kysely<CoreDatabase>) => {
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push({ instance, line: JSON.parse(line) as Record<string, unknown> }) });
    const app = await buildCore({
      db, logger, databaseUrl: coreDb.appUrl, peer: peerUrls('core', { masterdata: masterdataUrl, iam: iamUrl }),
      credentials: testCredentials('core'),
      auth: createAuth({ sources: remoteAuthSources(iamUrl, { credentials: testCredentials('core') }) }), env: { LOOKUP_RECONCILE_AT: '* * * * * *' },
    });
    return { app, url: await app.listen({ host: '127.0.0.1', port: await freePort() }) };
  };
  const a = await startCore('a', coreDb.db as Kysely<CoreDatabase>);
  const b = await startCore('b', secondPool);
  const cores: { app: HttpServer; url: string }[] = [a, b];
  afterAll(async () => {
    await Promise.all(cores.map(({ app }) => app.close()));
    await secondPool.destroy();
    await masterdataServer.close();
    await iam.close();
  });

  const consumer = async (core: HttpServer, name: string) =>
    (await asPrincipal(core, OPERATOR).inject({ url: '/internal/v1/consumers' })).json<{ consumers: (ConsumerStats & { name: string })[] }>().consumers.find((c) => c.name === name)!;
  const until = async (what: string, condition: () => Promise<boolean>) => {
    for (let attempt = 0; attempt < 600; attempt++) {
      if (await condition()) return;
      await sleep(50);
    }
    throw new Error(`never: ${what}`);
  };
  const cli = async (coreUrl: string, ...args: string[]) => {
    const result = await run(process.execPath, ['--import', 'tsx', path.join(repositoryRoot, 'packages/cli/src/main.ts'), ...args], {
      env: { ...process.env, CORE_URL: coreUrl, IAM_URL: iamUrl, MASTERDATA_URL: masterdataUrl, OPERATOR_PRIVATE_KEY: testOperatorKey() },
    }).catch((error: { code: number; stdout: string; stderr: string }) => error);
    return { code: 'code' in result ? result.code : 0, output: `${result.stdout}${result.stderr}` };
  };

  it('makes both instances refuse a user IAM deleted (broadcast), not only the one that took the event', async () => {
    const created = await iam.inject({
      method: 'POST', url: '/api/v1/users', headers: { authorization: `Bearer ${adminToken}` },
      payload: { email: 'clerk@example.com', display_name: 'Carl Clerk', password: 'another long password', roles: ['staff'], department_code: 'LAB' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const clerkId = created.json<{ id: string }>().id;
    // Both instances follow IAM: each sees user.created (a group would give it to one of them).
    await until('both instances saw user.created', async () => (await Promise.all(cores.map(({ app }) => consumer(app, 'core.iam-changes')))).every((c) => c.processed >= 1));
    const clerkToken = await signIn('clerk@example.com', 'another long password');
    const clerks = cores.map(({ app }) => asUser(app, clerkToken));
    const order = { method: 'POST', url: '/api/v1/orders', payload: { item_name: 'Gauze', department_code: 'LAB' } } as const;
    for (const clerk of clerks) expect((await clerk.inject(order)).statusCode).toBe(201); // each instance now caches the clerk as valid

    expect((await iam.inject({ method: 'DELETE', url: `/api/v1/users/${clerkId}`, headers: { authorization: `Bearer ${adminToken}` } })).statusCode).toBe(204);
    // Well inside the user cache's 5 minutes and the session check's 30 s: only the event can do it.
    for (const [index, clerk] of clerks.entries()) {
      let refused = await clerk.inject(order);
      for (let attempt = 0; refused.statusCode === 201 && attempt < 100; attempt++) {
        await sleep(100);
        refused = await clerk.inject(order);
      }
      expect(refused.json(), `instance ${index === 0 ? 'a' : 'b'}`).toMatchObject({ status: 422, errors: [{ value: clerkId }] });
    }
    // Each instance applied every IAM event since it started; as a group they would have split them,
    // and the one that lost a compare-and-swap would reload the cursor past events it never saw.
    const [iamA, iamB] = await Promise.all(cores.map(({ app }) => consumer(app, 'core.iam-changes')));
    expect(iamA).toMatchObject({ mode: 'broadcast', processed: iamB!.processed, position: iamB!.position });
    expect((await sql`SELECT 1 FROM event_cursors WHERE consumer = 'core.iam-changes'`.execute(coreDb.db)).rows).toEqual([]);
  });

  it('applies a label change to the lookup once, in one of the instances (group)', async () => {
    const changed = await masterdata.inject({ method: 'PATCH', url: '/api/v1/labels/MR', payload: { label: 'Mr (changed)' } });
    expect(changed.statusCode, changed.body).toBe(200);
    const events = (await sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox`.execute(master.db)).rows[0]!.n;
    const applied = () => Promise.all(cores.map(({ app }) => consumer(app, 'core.lookups.masterdata')));
    // (The reconciliation job may repair the row first; the consumers' counts are what tell.)
    await until('the consumers applied the change', async () => (await applied()).reduce((total, c) => total + c.processed, 0) >= events);
    await sleep(300); // a second application would show now
    const [first, second] = await applied();
    expect([first!.mode, second!.mode]).toEqual(['group', 'group']);
    expect(first!.processed + second!.processed).toBe(events); // each event by exactly one instance
    expect((await sql<{ label: string }>`SELECT label FROM labels_lookup WHERE code = 'MR'`.execute(coreDb.db)).rows).toEqual([{ label: 'Mr (changed)' }]);
    expect((await sql<{ position: string }>`SELECT position FROM event_cursors WHERE consumer = 'core.lookups.masterdata'`.execute(coreDb.db)).rows).toHaveLength(1);
  });

  it('runs a job scheduled in both instances once per tick; the CLI shows its status from either and runs it', async () => {
    const finished = () => logs.filter(({ line }) => line.msg === 'job finished' && line.job === 'lookups.reconcile' && line.trigger === 'schedule');
    await until('three ticks of lookups.reconcile', async () => new Set(finished().map(({ line }) => line.tick)).size >= 3);
    const perTick = new Map<unknown, string[]>();
    for (const { instance, line } of finished()) perTick.set(line.tick, [...(perTick.get(line.tick) ?? []), instance]);
    expect([...perTick.values()].filter((instances) => instances.length !== 1)).toEqual([]);

    if (new Date().getUTCMinutes() === 59) await sleep(65_000 - new Date().getUTCSeconds() * 1_000); // clear of outbox.prune's hourly tick
    const listed = await cli(a.url, 'jobs', 'list', 'core');
    expect(listed.code, listed.output).toBe(0);
    expect(listed.output).toMatch(/^core {2}lookups\.reconcile {2}\* \* \* \* \* \* \(UTC\), next \S+; last succeeded \S+ \(schedule, \d+ ms, on \S+\)(; running since \S+ on \S+)?$/m);
    // Not run yet, unless the test crossed the top of an hour (its hourly tick ran it by schedule).
    expect(listed.output).toMatch(/^core {2}outbox\.prune {2}0 \* \* \* \* \(UTC\), next \S+:00:00\.000Z; (never run|last succeeded \S+:00:0\d\.\d+Z \(schedule, \d+ ms, on \S+\))$/m);

    const ran = await cli(a.url, 'jobs', 'run', 'core', 'outbox.prune');
    expect(ran.code, ran.output).toBe(0);
    expect(ran.output).toMatch(/^core {2}outbox\.prune .*; last succeeded (\S+) \(manual, \d+ ms, on \S+\)$/m);
    expect(ran.output).toContain('result: {"pruned":0}');
    const finishedAt = /last succeeded (\S+) \(manual/.exec(ran.output)![1];
    const fromB = await cli(b.url, 'jobs', 'list', 'core');
    expect(fromB.output).toContain(`outbox.prune  0 * * * * (UTC)`);
    expect(fromB.output).toContain(`last succeeded ${finishedAt} (manual`); // the other instance reports the same run

    const all = await cli(a.url, 'jobs', 'list');
    // Every service's jobs; notification, not running here, is reported and makes the exit code 1.
    expect(all.output, all.output).toContain('notification is not answering');
    expect(all.output).toMatch(/^iam {2}audit\.purge {2}30 3 \* \* \* \(UTC\)/m);
    expect(all.output).toMatch(/^masterdata {2}outbox\.prune /m);
    expect((await cli(a.url, 'jobs', 'run', 'core', 'nothing.here')).output).toContain('core has no job nothing.here (it has outbox.prune, idempotency.prune, lookups.reconcile).');
    expect((await cli(a.url, 'jobs', 'list', 'gateway')).code).toBe(2);
  }, 120_000);
});
