import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { batched } from '../src/notifications/batches.ts';
import { notificationTestApp } from './notification-app.ts';

/** A batch runner whose batches finish when the test says. */
function heldRunner(fail?: (item: string) => boolean) {
  const batches: string[][] = [];
  const release: (() => void)[] = [];
  const run = async (items: readonly string[]) => {
    batches.push([...items]);
    await new Promise<void>((resolve) => release.push(resolve));
    if (fail && items.some(fail)) throw new Error(`bad item in ${items.join(',')}`);
    return items.map((item) => item.toUpperCase());
  };
  const next = async () => {
    while (release.length === 0) await new Promise((resolve) => setImmediate(resolve));
    release.shift()!();
  };
  return { batches, run, next };
}

describe('batched', () => {
  it('runs the first call at once and the calls made meanwhile together, answering each its own', async () => {
    const runner = heldRunner();
    const call = batched(runner.run);
    const answers = ['a', 'b', 'c', 'd'].map((item) => call(item));
    await runner.next();
    await runner.next();
    expect(await Promise.all(answers)).toEqual(['A', 'B', 'C', 'D']);
    expect(runner.batches).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('keeps batches to their largest size', async () => {
    const runner = heldRunner();
    const call = batched(runner.run, { maxBatch: 2 });
    const answers = ['a', 'b', 'c', 'd'].map((item) => call(item));
    for (let i = 0; i < 3; i++) await runner.next();
    expect(await Promise.all(answers)).toEqual(['A', 'B', 'C', 'D']);
    expect(runner.batches).toEqual([['a'], ['b', 'c'], ['d']]);
  });

  it('runs each item of a failed batch alone: only the bad one fails', async () => {
    const runner = heldRunner((item) => item === 'bad');
    const call = batched(runner.run);
    const answers = ['a', 'b', 'bad', 'c'].map((item) => call(item).catch((error: unknown) => (error as Error).message));
    for (let i = 0; i < 5; i++) await runner.next();
    expect(await Promise.all(answers)).toEqual(['A', 'B', 'bad item in bad', 'C']);
    expect(runner.batches).toEqual([['a'], ['b', 'bad', 'c'], ['b'], ['bad'], ['c']]);
  });
  it('fails every call of a batch at once when the failure is not the items\' own', async () => {
    const runner = heldRunner((item) => item === 'bad');
    const call = batched(runner.run, { retryAlone: () => false });
    const answers = ['a', 'b', 'bad', 'c'].map((item) => call(item).catch((error: unknown) => (error as Error).message));
    for (let i = 0; i < 2; i++) await runner.next();
    expect(await Promise.all(answers)).toEqual(['A', 'bad item in b,bad,c', 'bad item in b,bad,c', 'bad item in b,bad,c']);
    expect(runner.batches).toEqual([['a'], ['b', 'bad', 'c']]);
  });
});

describe('concurrent creates', async () => {
  const { server, identity, db } = await notificationTestApp();
  const admin = identity.user({ roles: ['admin'], departmentCode: 'LAB' });
  const recipient = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const token = await identity.token(admin);
  const create = (key: string, title: string) =>
    server.inject({
      method: 'POST', url: '/api/v1/notifications',
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': key },
      payload: { user_id: recipient.id, notification_type: 'TEST', title, message: 'm' },
    });

  it('share transactions, each marking its own Idempotency-Key committed with its write; a retry replays its own', async () => {
    const keys = Array.from({ length: 24 }, () => randomUUID());
    const responses = await Promise.all(keys.map((key, i) => create(key, `n${i}`)));
    expect(responses.map((response) => response.statusCode)).toEqual(keys.map(() => 201));
    const created = responses.map((response) => response.json<{ id: string; title: string }>());
    expect(created.map((n) => n.title)).toEqual(keys.map((_, i) => `n${i}`));
    const transactions = await sql<{ n: string }>`SELECT count(DISTINCT xmin::text) AS n FROM notifications WHERE id = ANY(${created.map((n) => n.id)}::uuid[])`.execute(db);
    expect(Number(transactions.rows[0]!.n)).toBeLessThan(keys.length);
    const marks = await sql<{ key: string; committed: boolean }>`SELECT key, committed FROM idempotency_keys WHERE key = ANY(${keys})`.execute(db);
    expect(marks.rows.filter((row) => row.committed).map((row) => row.key).sort()).toEqual([...keys].sort());
    const retried = await Promise.all(keys.map((key, i) => create(key, `n${i}`)));
    expect(retried.map((response) => [response.headers['idempotent-replayed'], response.json<{ id: string }>().id])).toEqual(created.map((n) => ['true', n.id]));
    expect((await sql`SELECT 1 FROM notifications WHERE user_id = ${recipient.id}::uuid`.execute(db)).rows).toHaveLength(keys.length);
  });
});
