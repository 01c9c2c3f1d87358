import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase, isConnectionError, isTransactionConflict } from '../src/db.ts';
import { createHttpServer } from '../src/http.ts';
import { freePort, superuserClient, useTestDatabase } from '../src/testing/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('a lost database connection', async () => {
  const database = await useTestDatabase('masterdata');

  it('does not end the process holding the client, and the pool serves the next query', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures/lost-connection.ts')], {
      env: { ...process.env, DATABASE_URL: database.appUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    while (!/pid (\d+)/.test(output)) {
      if (child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const pid = Number(/pid (\d+)/.exec(output)?.[1]);
    const admin = await superuserClient();
    try {
      await admin.query('select pg_terminate_backend($1)', [pid]);
    } finally {
      await admin.end();
    }
    expect(await exited, output).toBe(0);
    expect(output).toContain('served');
  });

  describe('in a route', async () => {
    const gone = createDatabase<unknown>(`postgresql://nobody:x@127.0.0.1:${await freePort()}/none`, { max: 1 });
    const app = await createHttpServer({ service: 'demo', logger: false });
    app.get('/terminated', async () => sql`select pg_terminate_backend(pg_backend_pid())`.execute(database.db));
    app.get('/refused', async () => sql`select 1`.execute(gone));
    app.get('/bug', async () => sql`select * from no_such_table`.execute(database.db));
    // Takes two advisory locks in the order given, pausing between them so that two opposite requests deadlock.
    app.get<{ Params: { first: string; second: string } }>('/locks/:first/:second', async (request) =>
      database.db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${Number(request.params.first)}), pg_sleep(0.3)`.execute(trx);
        await sql`select pg_advisory_xact_lock(${Number(request.params.second)})`.execute(trx);
        return { locked: true };
      }));
    afterAll(async () => {
      await app.close();
      await gone.destroy();
    });

    it('is a 503 with Retry-After, not a 500', async () => {
      for (const url of ['/terminated', '/refused']) {
        const response = await app.inject({ url });
        expect(response.statusCode, url).toBe(503);
        expect(response.headers['retry-after'], url).toMatch(/^\d+$/);
        expect(response.json()).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
      }
      // The pool recovers: once it has seen the connection close, requests get a fresh one
      // (and a real bug is still a 500).
      let status = 503;
      for (let attempt = 0; attempt < 20 && status === 503; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        status = (await app.inject({ url: '/bug' })).statusCode;
      }
      expect(status).toBe(500);
    });

    it('a transaction PostgreSQL aborts to break a deadlock is a 503 with Retry-After, not a 500', { timeout: 30_000 }, async () => {
      const [one, other] = await Promise.all([app.inject({ url: '/locks/7001/7002' }), app.inject({ url: '/locks/7002/7001' })]);
      const statuses = [one.statusCode, other.statusCode].sort();
      expect(statuses).toEqual([200, 503]);
      const refused = one.statusCode === 503 ? one : other;
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      expect(refused.json()).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
      expect(refused.json<{ detail: string }>().detail).toContain('deadlock');
    });
  });

  it('is told apart from other errors', () => {
    const pg = (code: string) => Object.assign(new Error('x'), { code });
    for (const error of [pg('57P01'), pg('57P03'), pg('08006'), pg('ECONNREFUSED'), new Error('timeout exceeded when trying to connect'),
      new Error('Connection terminated unexpectedly'), new TypeError('fetch failed', { cause: pg('ECONNRESET') }), new AggregateError([pg('ECONNREFUSED')])]) {
      expect(isConnectionError(error), String(error)).toBe(true);
    }
    for (const error of [pg('23505'), pg('42P01'), pg('28P01'), new Error('boom'), undefined, 'ECONNREFUSED']) {
      expect(isConnectionError(error), String(error)).toBe(false);
    }
    expect(isConnectionError(pg('53300')), 'too many connections').toBe(true);
    for (const code of ['40001', '40P01', '55P03']) expect(isTransactionConflict(new Error('x', { cause: pg(code) })), code).toBe(true);
    for (const code of ['23505', '57P01', '40000']) expect(isTransactionConflict(pg(code)), code).toBe(false);
  });
});
