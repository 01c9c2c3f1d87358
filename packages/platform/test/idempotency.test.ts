import { request as httpRequest } from 'node:http';
import { sql } from 'kysely';
import pg from 'pg';
import type { FastifyRequest } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuthUser } from '../src/auth/types.ts';
import { appendEvents } from '../src/events/index.ts';
import { createHttpServer } from '../src/http.ts';
import { pruneIdempotencyKeys } from '../src/idempotency/index.ts';
import { superuserClient, useTestDatabase } from '../src/testing/index.ts';

// The platform's hook on a small app: `x-user` (and `x-token`) stand for what authentication sets.
describe('Idempotency-Key (platform)', async () => {
  const database = await useTestDatabase('masterdata'); // any service database with idempotency_keys and an outbox
  const db = database.db;
  const app = await createHttpServer({ service: 'test', logger: false, idempotency: { db } });
  afterAll(() => app.close());
  let failNext: number | undefined;
  let failAfterCommit = false;
  let written = 0;
  const signIn = async (request: FastifyRequest) => {
    const id = request.headers['x-user'];
    if (typeof id !== 'string') return;
    const token = request.headers['x-token'];
    const via = typeof token === 'string' ? { kind: 'api-token' as const, tokenId: token } : { kind: 'jwt' as const, sessionId: 's1' };
    (request as { user?: AuthUser }).user = { id, roles: [], permissions: [], departmentCode: null, via };
  };
  const write = async (name: string) => {
    written++;
    await db.transaction().execute((trx) => appendEvents(trx, [{ type: 'thing.created', aggregateType: 'thing', aggregateId: name, aggregateVersion: written, payload: { name } }]));
  };
  app.post('/api/v1/things', { preHandler: signIn }, async (request, reply) => {
    if (failNext !== undefined) {
      const status = failNext;
      failNext = undefined;
      return reply.status(status).send({ status });
    }
    const { name } = request.body as { name: string };
    await write(name);
    if (failAfterCommit) throw new Error('lost after the commit');
    return reply.status(201).send({ name, written });
  });
  app.post('/api/v1/secrets', { preHandler: signIn }, async (_request, reply) => {
    await write('secret');
    return reply.status(201).header('cache-control', 'no-store').send({ secret: `s3cr3t-${written}` });
  });
  app.delete('/api/v1/things/:name', { preHandler: signIn }, async (_request, reply) => {
    await write('deleted');
    return reply.status(204).send();
  });
  app.get('/api/v1/things', { preHandler: signIn }, async () => ({ written }));

  const post = (key: string | undefined, body: object = { name: 'a' }, user: string | null = 'u1', extra: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/api/v1/things', payload: body, headers: { ...(key === undefined ? {} : { 'idempotency-key': key }), ...(user ? { 'x-user': user } : {}), ...extra } });
  const rows = async (key: string) => (await sql<{ principal: string; state: string; committed: boolean; response_body: string | null }>`SELECT principal, state, committed, response_body FROM idempotency_keys WHERE key = ${key}`.execute(db)).rows;

  it('frees the key of a request that failed with a 5xx, so the retry writes once', async () => {
    failNext = 503;
    expect((await post('k-503')).statusCode).toBe(503);
    expect(await rows('k-503')).toEqual([]);
    const before = written;
    const retry = await post('k-503');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(written).toBe(before + 1);
  });

  it('frees the key of a failed request as soon as its database answers again, not once the key is stale', async () => {
    // The key's row cannot be freed at first (here: DELETE revoked from the service's role, as a
    // terminated backend or a restarting server would refuse it); it must be freed once it can.
    const admin = await superuserClient(database.name);
    const { role, keys } = (await sql<{ role: string; keys: string }>`SELECT current_user AS role, format('%I.%I', n.nspname, c.relname) AS keys FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'idempotency_keys'::regclass`.execute(db)).rows[0]!;
    const grant = (verb: 'GRANT' | 'REVOKE') => admin.query(`${verb} DELETE ON ${keys} ${verb === 'GRANT' ? 'TO' : 'FROM'} ${pg.escapeIdentifier(role)}`);
    try {
      await grant('REVOKE');
      failNext = 503;
      expect((await post('k-unreleased')).statusCode).toBe(503);
      expect(await rows('k-unreleased')).toHaveLength(1);
      expect((await post('k-unreleased')).statusCode).toBe(409);
      await grant('GRANT');
      const before = written;
      // The key is stale only after 30 s; within 5 s the retry must go through.
      let status = 409;
      for (let waited = 0; status === 409 && waited < 5_000; waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = (await post('k-unreleased')).statusCode;
      }
      expect(status).toBe(201);
      expect(written).toBe(before + 1);
    } finally {
      await grant('GRANT');
      await admin.end();
    }
  });

  it('keeps a 4xx answer of the handler and replays it', async () => {
    failNext = 409;
    expect((await post('k-409')).statusCode).toBe(409);
    const again = await post('k-409');
    expect(again.statusCode).toBe(409);
    expect(again.headers['idempotent-replayed']).toBe('true');
  });

  it('answers a retry of a write that committed before its 5xx with a 409 naming it, never a second write', async () => {
    failAfterCommit = true;
    expect((await post('k-lost')).statusCode).toBe(500);
    failAfterCommit = false;
    expect(await rows('k-lost')).toMatchObject([{ state: 'in_progress', committed: true }]);
    const before = written;
    expect((await post('k-lost')).json()).toMatchObject({ status: 409, reason: 'committed, response lost' });
    expect(written).toBe(before);
  });

  it('does not keep a no-store response (a secret): a retry is a 409, not a replay', async () => {
    const first = await app.inject({ method: 'POST', url: '/api/v1/secrets', headers: { 'idempotency-key': 'k-secret', 'x-user': 'u1' } });
    expect(first.statusCode).toBe(201);
    expect(await rows('k-secret')).toMatchObject([{ state: 'completed', response_body: null }]);
    const dump = (await sql<{ row: string }>`SELECT idempotency_keys::text AS row FROM idempotency_keys`.execute(db)).rows.map((r) => r.row).join('\n');
    expect(dump).not.toContain(first.json<{ secret: string }>().secret);
    const retry = await app.inject({ method: 'POST', url: '/api/v1/secrets', headers: { 'idempotency-key': 'k-secret', 'x-user': 'u1' } });
    expect(retry.json()).toMatchObject({ status: 409, reason: 'completed, response not kept' });
  });

  it('replays a 204 without a body', async () => {
    const remove = () => app.inject({ method: 'DELETE', url: '/api/v1/things/a', headers: { 'idempotency-key': 'k-204', 'x-user': 'u1' } });
    expect((await remove()).statusCode).toBe(204);
    const before = written;
    const again = await remove();
    expect(again.statusCode).toBe(204);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe('');
    expect(written).toBe(before);
  });

  it("scopes keys to the caller: a user's API token has keys of its own", async () => {
    const mine = await post('k-scope');
    const token = await post('k-scope', undefined, 'u1', { 'x-token': 't1' });
    expect(token.headers['idempotent-replayed']).toBeUndefined();
    expect(token.json<{ written: number }>().written).toBe(mine.json<{ written: number }>().written + 1);
    expect((await rows('k-scope')).map((r) => r.principal).sort()).toEqual(['api-token:t1', 'user:u1']);
  });

  it('ignores the key of anonymous requests and of reads, and refuses a malformed key (400 naming the header)', async () => {
    const before = written;
    await post('k-anon', undefined, null);
    await post('k-anon', undefined, null);
    expect(written).toBe(before + 2);
    await app.inject({ url: '/api/v1/things', headers: { 'idempotency-key': 'k-read', 'x-user': 'u1' } });
    expect([...(await rows('k-anon')), ...(await rows('k-read'))]).toEqual([]);
    const long = await post('x'.repeat(256));
    expect(long.json()).toMatchObject({ status: 400, errors: [{ field: 'headers.idempotency-key' }] });
    expect((await post('tab\there')).statusCode).toBe(400);
    expect((await post('"quoted-1"')).statusCode).toBe(201);
    expect((await post('quoted-1')).headers['idempotent-replayed']).toBe('true'); // "k" and k are one key
  });

  it('refuses a key sent on two header lines (Node would join them into one key, "a, b")', async () => {
    const url = new URL('/api/v1/things', await app.listen({ host: '127.0.0.1', port: 0 }));
    const before = written;
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const sent = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user': 'u1', 'idempotency-key': ['twice-a', 'twice-b'] } }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      sent.on('error', reject);
      sent.end(JSON.stringify({ name: 'twice' }));
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ errors: [{ field: 'headers.idempotency-key', message: 'must be sent once' }] });
    expect(written).toBe(before);
  });

  it('leaves secret members out of the fingerprint: only their presence counts', async () => {
    expect((await post('k-password', { name: 'p', password: 'first secret' })).statusCode).toBe(201);
    const otherPassword = await post('k-password', { name: 'p', password: 'second secret' });
    expect(otherPassword.headers['idempotent-replayed']).toBe('true');
    expect((await post('k-password', { name: 'q', password: 'first secret' })).statusCode).toBe(422);
    expect((await post('k-password', { name: 'p' })).statusCode).toBe(422);
  });

  it('documents the header on every write in the OpenAPI document, not on reads', async () => {
    const document = (await app.inject({ url: '/docs/json' })).json<{ paths: Record<string, Record<string, { parameters?: { in: string; name: string }[] }>> }>();
    const headersOf = (path: string, method: string) => (document.paths[path]?.[method]?.parameters ?? []).filter((p) => p.in === 'header').map((p) => p.name);
    expect(headersOf('/api/v1/things', 'post')).toEqual(['idempotency-key']);
    expect(headersOf('/api/v1/things/{name}', 'delete')).toEqual(['idempotency-key']);
    expect(headersOf('/api/v1/things', 'get')).toEqual([]);
  });

  it('forgets a key after its retention: an expired key is a new request, and pruning deletes it', async () => {
    await post('k-old');
    await sql`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'k-old'`.execute(db);
    const before = written;
    const again = await post('k-old');
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(written).toBe(before + 1);
    await sql`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'k-old'`.execute(db);
    expect(await pruneIdempotencyKeys(db)).toBe(1);
    expect(await rows('k-old')).toEqual([]);
  });
});
