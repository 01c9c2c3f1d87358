import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { bearer, startIam, tokenOf } from './helpers.ts';

describe('Idempotency-Key on iam writes', async () => {
  const { app, db } = await startIam();
  const admin = bearer(await tokenOf(app));

  it('creates a user once for a retried request, and keeps no API token secret as a replayable response', async () => {
    const user = { email: 'idem@example.com', display_name: 'Idem', password: 'a long enough password', roles: ['viewer'] };
    const create = () => app.inject({ method: 'POST', url: '/api/v1/users', headers: { ...admin, 'idempotency-key': 'iam-user' }, payload: user });
    const first = await create();
    expect(first.statusCode).toBe(201);
    const again = await create();
    expect(again.statusCode).toBe(201); // not the 409 of a taken email
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await db.selectFrom('users').select('id').where('email', '=', user.email).execute()).toHaveLength(1);

    const mint = () => app.inject({ method: 'POST', url: '/api/v1/auth/api-tokens', headers: { ...admin, 'idempotency-key': 'iam-token' }, payload: { name: 'ci', scopes: ['users:read'] } });
    const minted = await mint();
    expect(minted.statusCode).toBe(201);
    expect(minted.headers['cache-control']).toBe('no-store');
    const retried = await mint();
    expect(retried.json()).toMatchObject({ status: 409, reason: 'completed, response not kept' });
    expect(JSON.stringify((await sql`SELECT * FROM idempotency_keys`.execute(db)).rows)).not.toContain(minted.json<{ token: string }>().token);
  });
});

// IAM's writes that append no event (policies, API tokens) mark their Idempotency-Key committed in
// their own transaction too: a process that dies after the commit and before storing the response
// must leave a key a retry learns from (409), not one it takes over to write a second time.
describe('Idempotency-Key on IAM writes without events', async () => {
  const { app, db } = await startIam();
  const admin = bearer(await tokenOf(app));
  const count = async (table: 'policies' | 'api_tokens') => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(table)}`.execute(db)).rows[0]!.n;
  // What a crash between the write's commit and the stored response leaves: the key in progress, long ago.
  const crashAfterCommit = (key: string) =>
    sql`UPDATE idempotency_keys SET state = 'in_progress', response_status = NULL, response_body = NULL, response_kept = NULL, completed_at = NULL,
        started_at = now() - interval '1 hour' WHERE key = ${key}`.execute(db);
  const send = (method: 'POST' | 'PUT' | 'DELETE', url: string, key: string, payload?: object) =>
    app.inject({ method, url, payload, headers: { ...admin, 'idempotency-key': key } });

  it.each([
    { what: 'a policy', table: 'policies' as const, url: '/api/v1/policies', body: { name: 'idem-policy', effect: 'deny', permission: 'labels:write', role: 'viewer', condition: 'always' } },
    { what: 'an API token', table: 'api_tokens' as const, url: '/api/v1/auth/api-tokens', body: { name: 'idem-token', scopes: ['labels:read'] } },
  ])('never creates $what twice when the first attempt committed and its response was lost', async ({ table, url, body }) => {
    const key = `create-${table}`;
    expect((await send('POST', url, key, body)).statusCode).toBe(201);
    const created = await count(table);
    await crashAfterCommit(key);
    const retry = await send('POST', url, key, body);
    expect(retry.json()).toMatchObject({ status: 409, code: 'IDEMPOTENCY_KEY_IN_USE', reason: 'committed, response lost' });
    expect(await count(table)).toBe(created);
  });

  it('marks a policy change and a policy deletion committed with their write', async () => {
    const policy = (await send('POST', '/api/v1/policies', 'p-create', { name: 'idem-changed', effect: 'deny', permission: 'labels:write', role: 'viewer', condition: 'always' })).json<{ id: string }>();
    expect((await send('PUT', `/api/v1/policies/${policy.id}`, 'p-replace', { name: 'idem-changed', effect: 'deny', permission: 'labels:read', role: 'viewer', condition: 'always' })).statusCode).toBe(200);
    expect((await send('DELETE', `/api/v1/policies/${policy.id}`, 'p-delete')).statusCode).toBe(204);
    const rows = await sql<{ key: string; committed: boolean }>`SELECT key, committed FROM idempotency_keys WHERE key LIKE 'p-%' ORDER BY key`.execute(db);
    expect(rows.rows).toEqual([
      { key: 'p-create', committed: true },
      { key: 'p-delete', committed: true },
      { key: 'p-replace', committed: true },
    ]);
  });
});
