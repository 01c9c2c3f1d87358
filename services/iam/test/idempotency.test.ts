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
