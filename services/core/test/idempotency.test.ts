import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { asUser } from '@archipelago/platform/testing/identity';
import { coreTestApp } from './core-app.ts';

interface KeyRow {
  state: string;
  committed: boolean;
  attempt: string;
}

describe('Idempotency-Key on core writes', async () => {
  const { app, server, identity, database } = await coreTestApp();
  const owner = database.db;
  const count = async (query: string) => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.raw(query)}`.execute(owner)).rows[0]!.n;
  const orders = () => count('orders');
  const events = (type: string) => count(`outbox WHERE type = '${type}'`);
  const keyRow = async (key: string) => (await sql<KeyRow>`SELECT state, committed, attempt FROM idempotency_keys WHERE key = ${key}`.execute(owner)).rows[0];
  const create = (key: string, body: object = { item_name: 'Gauze', department_code: 'LAB' }, client = app) =>
    client.inject({ method: 'POST', url: '/api/v1/orders', payload: body, headers: { 'idempotency-key': key } });
  // Blocks every order create at its code counter, inside its transaction, until released.
  const holdOrderCodes = async () => {
    const year = new Date().getUTCFullYear();
    await sql`INSERT INTO order_code_counters (year, last_value) VALUES (${year}, 0) ON CONFLICT (year) DO NOTHING`.execute(owner);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = owner.transaction().execute(async (trx) => {
      await sql`SELECT 1 FROM order_code_counters WHERE year = ${year} FOR UPDATE`.execute(trx);
      locked();
      await released;
    });
    await isLocked;
    return async () => {
      release();
      await holding;
    };
  };
  const until = async (condition: () => Promise<boolean>) => {
    while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 20));
  };

  it('replays the first response to a retry after the commit, and writes nothing again', async () => {
    const [before, created] = [await orders(), await events('order.created')];
    const first = await create('retry-1');
    expect(first.statusCode, first.body).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await create('retry-1', { department_code: 'LAB', item_name: 'Gauze' }); // same members, another order
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['content-type']).toContain('application/json');
    expect(again.body).toBe(first.body);
    expect(await orders()).toBe(before + 1);
    expect(await events('order.created')).toBe(created + 1);
    expect(await keyRow('retry-1')).toMatchObject({ state: 'completed', committed: true });

    // A state change too: the second identical POST replays instead of a 409 for an illegal transition.
    const id = first.json<{ id: string }>().id;
    const move = () => app.inject({ method: 'POST', url: `/api/v1/orders/${id}/status`, payload: { status: 'PROCESSING' }, headers: { 'idempotency-key': '"move-1"' } });
    const moved = await move();
    expect(moved.json()).toMatchObject({ status: 'PROCESSING', version: 2 });
    const replayed = await move();
    expect(replayed.statusCode).toBe(200);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(await events('order.status-changed')).toBe(1);
  });

  it('refuses the same key with another body, method or path (422) and writes nothing', async () => {
    expect((await create('reuse-1')).statusCode).toBe(201);
    const before = await orders();
    const other = await create('reuse-1', { item_name: 'Tape', department_code: 'LAB' });
    expect(other.json()).toMatchObject({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED', errors: [{ field: 'headers.idempotency-key', value: 'reuse-1' }] });
    const elsewhere = await app.inject({ method: 'POST', url: '/api/v1/resources', payload: { item_name: 'Gauze', department_code: 'LAB' }, headers: { 'idempotency-key': 'reuse-1' } });
    expect(elsewhere.statusCode).toBe(400); // the body is validated first: a malformed request never touches the key
    const resource = { reference_number: 'REF900', first_name: 'Ada', last_name: 'Byron' };
    const path = await app.inject({ method: 'POST', url: '/api/v1/resources', payload: resource, headers: { 'idempotency-key': 'reuse-1' } });
    expect(path.json()).toMatchObject({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await orders()).toBe(before);
    expect(await count(`resources WHERE reference_number = 'REF900'`)).toBe(0);
  });

  it('answers 409 to a duplicate while the first is in flight, then replays the first once it is done', async () => {
    const before = await orders();
    const release = await holdOrderCodes();
    const first = create('inflight-1');
    await until(async () => (await keyRow('inflight-1')) !== undefined);
    const duplicate = await create('inflight-1');
    expect(duplicate.json()).toMatchObject({ status: 409, code: 'IDEMPOTENCY_KEY_IN_USE', reason: 'in progress' });
    expect(duplicate.headers['retry-after']).toBe('1');
    await release();
    expect((await first).statusCode).toBe(201);
    const after = await create('inflight-1');
    expect(after.headers['idempotent-replayed']).toBe('true');
    expect(after.body).toBe((await first).body);
    expect(await orders()).toBe(before + 1);
  });

  it("scopes keys to the caller: another user's same key and body write their own order", async () => {
    const first = await create('shared-1');
    const other = asUser(server, await identity.token(identity.user({ roles: ['admin'] })));
    const theirs = await create('shared-1', undefined, other);
    expect(theirs.statusCode).toBe(201);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
    expect(theirs.json<{ id: string }>().id).not.toBe(first.json<{ id: string }>().id);
  });

  it('lets a retry take over a key whose attempt is presumed dead, and never lets both attempts commit', async () => {
    const [before, created] = [await orders(), await events('order.created')];
    const release = await holdOrderCodes();
    const first = create('stale-1'); // holds the key, then waits inside its transaction
    await until(async () => (await keyRow('stale-1')) !== undefined);
    const firstAttempt = (await keyRow('stale-1'))!.attempt;
    await sql`UPDATE idempotency_keys SET started_at = now() - interval '1 hour' WHERE key = 'stale-1'`.execute(owner); // as if its process had died
    const retry = create('stale-1');
    await until(async () => (await keyRow('stale-1'))!.attempt !== firstAttempt);
    await release();
    const [firstResponse, retryResponse] = await Promise.all([first, retry]);
    expect(firstResponse.json()).toMatchObject({ status: 409, code: 'IDEMPOTENCY_KEY_IN_USE' });
    expect(retryResponse.statusCode, retryResponse.body).toBe(201);
    expect(await orders()).toBe(before + 1);
    expect(await events('order.created')).toBe(created + 1);
    expect((await create('stale-1')).body).toBe(retryResponse.body);
  });

  it('answers 409 naming it when a write committed but its response was lost, and writes nothing again', async () => {
    expect((await create('lost-1')).statusCode).toBe(201);
    // A crash between the commit and storing the response leaves the key committed, in progress.
    await sql`UPDATE idempotency_keys SET state = 'in_progress', response_status = NULL, response_body = NULL, started_at = now() - interval '1 hour' WHERE key = 'lost-1'`.execute(owner);
    const before = await orders();
    const retry = await create('lost-1');
    expect(retry.json()).toMatchObject({ status: 409, code: 'IDEMPOTENCY_KEY_IN_USE', reason: 'committed, response lost' });
    expect(retry.headers['retry-after']).toBeUndefined(); // retrying will not help
    expect(await orders()).toBe(before);
  });
});
