import { peerUrls } from '@archipelago/platform';
import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { useTestDatabase } from '@archipelago/platform/testing';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { asUser, startTestIdentity } from '@archipelago/platform/testing/identity';
import { recordedEvents } from '@archipelago/platform/testing/events';
import { buildApp } from '../src/app.ts';
import type { MasterdataDatabase } from '../src/database.ts';
import { seed } from '../src/seed.ts';

describe('masterdata labels', async () => {
  const database = await useTestDatabase('masterdata');
  await withOwnerDatabase(database, seed);
  await withOwnerDatabase(database, seed); // a seed is safe to run on every start
  const identity = await startTestIdentity();
  const server = await buildApp({
    db: database.db as Kysely<MasterdataDatabase>, logger: false, databaseUrl: database.appUrl, credentials: testCredentials('masterdata'), peer: peerUrls('masterdata', { iam: identity.url }),
    auth: createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('masterdata') }) }),
  });
  const app = asUser(server, await identity.token(identity.user())); // a signed-in administrator
  afterAll(async () => {
    await server.close();
    await identity.close();
  });

  it('lists the four seeded labels in display order', async () => {
    const response = await app.inject({ url: '/api/v1/labels' });
    expect(response.statusCode).toBe(200);
    const body = response.json<{ items: { code: string }[]; total: number }>();
    expect(body.total).toBe(4);
    expect(body.items.map((l) => l.code)).toEqual(['MR', 'MRS', 'MISS', 'DR']);
  });

  it('pages with limit and offset', async () => {
    const body = (await app.inject({ url: '/api/v1/labels?limit=2&offset=2' })).json<{ items: { code: string }[]; total: number }>();
    expect(body).toMatchObject({ total: 4, limit: 2, offset: 2 });
    expect(body.items.map((l) => l.code)).toEqual(['MISS', 'DR']);
  });

  it('reads one label and 404s an unknown one', async () => {
    expect((await app.inject({ url: '/api/v1/labels/DR' })).json()).toMatchObject({ code: 'DR', label: 'Dr.', display_name: 'Doctor' });
    expect((await app.inject({ url: '/api/v1/labels/ZZ' })).json()).toMatchObject({ status: 404, detail: 'Label ZZ does not exist' });
  });

  it('rejects bad query input naming the field', async () => {
    const response = await app.inject({ url: "/api/v1/labels?limit=9999&offset=-1" });
    expect(response.statusCode).toBe(400);
    expect(response.json<{ errors: { field: string }[] }>().errors.map((e) => e.field).sort()).toEqual(['querystring.limit', 'querystring.offset']);
    const injection = await app.inject({ url: `/api/v1/labels/${encodeURIComponent("MR' OR '1'='1")}` });
    expect(injection.statusCode).toBe(400);
  });

  it('is ready while its database answers', async () => {
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
  });

  const feed = () => recordedEvents<{ type: string; aggregate: { id: string; version: number }; payload: { label: string }; metadata: { correlationId?: string } }>(database.db);

  it('creates, updates and deletes a label, each change with its event in the outbox', async () => {
    const created = await app.inject({ method: 'POST', url: '/api/v1/labels', headers: { 'x-request-id': 'req-prof' }, payload: { code: 'PROF', label: 'Prof.', display_name: 'Professor', display_order: 5 } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ code: 'PROF', label: 'Prof.', abbreviation: null, is_active: true, version: 1 });
    const updated = await app.inject({ method: 'PATCH', url: '/api/v1/labels/PROF', payload: { label: 'Prof', is_active: false } });
    expect(updated.json()).toMatchObject({ label: 'Prof', is_active: false, version: 2 });
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/labels/PROF' })).statusCode).toBe(204);
    expect((await app.inject({ url: '/api/v1/labels/PROF' })).statusCode).toBe(404);
    const revived = await app.inject({ method: 'POST', url: '/api/v1/labels', payload: { code: 'PROF', label: 'Prof.', display_name: 'Professor' } });
    expect(revived.json()).toMatchObject({ code: 'PROF', version: 4 });

    const events = (await feed()).filter((e) => e.aggregate.id === 'PROF');
    expect(events.map((e) => [e.type, e.aggregate.version, e.payload.label])).toEqual([
      ['label.created', 1, 'Prof.'],
      ['label.updated', 2, 'Prof'],
      ['label.deleted', 3, 'Prof'],
      ['label.created', 4, 'Prof.'],
    ]);
    expect(events[0]!.metadata.correlationId).toBe('req-prof');
  });

  it('rejects a taken code with 409 and bad input with 400, naming the fields, and records no event', async () => {
    const before = (await feed()).length;
    const taken = await app.inject({ method: 'POST', url: '/api/v1/labels', payload: { code: 'DR', label: 'Dr.', display_name: 'Doctor' } });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({ code: 'CONFLICT', errors: [{ field: 'body.code', value: 'DR' }] });
    const bad = await app.inject({ method: 'POST', url: '/api/v1/labels', payload: { code: 'lower case', display_name: '', extra: 1 } });
    expect(bad.statusCode).toBe(400);
    const fields = bad.json<{ errors: { field: string }[] }>().errors.map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['body.code', 'body.label', 'body.display_name']));
    expect((await app.inject({ method: 'PATCH', url: '/api/v1/labels/NOPE', payload: { label: 'x' } })).statusCode).toBe(404);
    expect((await app.inject({ method: 'PATCH', url: '/api/v1/labels/DR', payload: {} })).statusCode).toBe(400);
    expect((await feed()).length).toBe(before);
  });

  it('writes nothing when its event cannot be recorded', async () => {
    await withOwnerDatabase(database, (db) => sql`REVOKE INSERT ON outbox FROM masterdata_app`.execute(db));
    try {
      const response = await app.inject({ method: 'POST', url: '/api/v1/labels', payload: { code: 'HALF', label: 'Half', display_name: 'Half written' } });
      expect(response.statusCode).toBe(500);
    } finally {
      await withOwnerDatabase(database, (db) => sql`GRANT INSERT ON outbox TO masterdata_app`.execute(db));
    }
    expect((await app.inject({ url: '/api/v1/labels/HALF' })).statusCode).toBe(404);
  });
});
