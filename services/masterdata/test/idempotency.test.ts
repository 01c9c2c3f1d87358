import { peerUrls } from '@archipelago/platform';
import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { testCredentials, useTestDatabase } from '@archipelago/platform/testing';
import { asUser, startTestIdentity } from '@archipelago/platform/testing/identity';
import { buildApp } from '../src/app.ts';
import type { MasterdataDatabase } from '../src/database.ts';

describe('Idempotency-Key on masterdata writes', async () => {
  const database = await useTestDatabase('masterdata');
  const identity = await startTestIdentity();
  const server = await buildApp({ db: database.db as Kysely<MasterdataDatabase>, logger: false, databaseUrl: database.appUrl, credentials: testCredentials('masterdata'), peer: peerUrls('masterdata', { iam: identity.url }), auth: createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('masterdata') }) }) });
  const app = asUser(server, await identity.token(identity.user()));
  afterAll(async () => {
    await server.close();
    await identity.close();
  });
  const events = async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox WHERE aggregate_id = 'IDEM'`.execute(database.db)).rows[0]!.n;
  const send = (method: 'POST' | 'PATCH' | 'DELETE', url: string, key: string, payload?: object) => app.inject({ method, url, payload, headers: { 'idempotency-key': key } });

  it('replays a retried create, change and delete instead of a 409, a second version or a 404', async () => {
    const label = { code: 'IDEM', label: 'Idem', display_name: 'Idem' };
    expect((await send('POST', '/api/v1/labels', 'md-create', label)).statusCode).toBe(201);
    const created = await send('POST', '/api/v1/labels', 'md-create', label);
    expect(created.statusCode).toBe(201);
    expect(created.headers['idempotent-replayed']).toBe('true');
    const changed = await send('PATCH', '/api/v1/labels/IDEM', 'md-change', { label: 'Idem 2' });
    expect((await send('PATCH', '/api/v1/labels/IDEM', 'md-change', { label: 'Idem 2' })).body).toBe(changed.body);
    expect((await send('DELETE', '/api/v1/labels/IDEM', 'md-delete')).statusCode).toBe(204);
    const deleted = await send('DELETE', '/api/v1/labels/IDEM', 'md-delete');
    expect(deleted.statusCode).toBe(204);
    expect(deleted.headers['idempotent-replayed']).toBe('true');
    expect(await events()).toBe(3);
    expect((await send('PATCH', '/api/v1/labels/MR', 'md-change', { label: 'Idem 2' })).statusCode).toBe(422);
  });
});
