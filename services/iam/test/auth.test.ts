import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { asPrincipal, OPERATOR, testCredentials } from '@archipelago/platform/testing/credentials';
import { buildIam } from '../src/app.ts';
import { ADMIN, bearer, login, startIam, tokenOf } from './helpers.ts';

describe('iam sign-in, tokens and sessions', async () => {
  const { app, db, clock, database } = await startIam({ publishLeadSeconds: 0 });
  afterAll(() => app.close());

  it('signs in with the right password: a small EdDSA access token with a kid, and a refresh token', async () => {
    const response = await login(app, ADMIN.email.toUpperCase(), ADMIN.password);
    expect(response.statusCode).toBe(200);
    const body = response.json<{ accessToken: string; refreshToken: string; expiresIn: number }>();
    expect(body.expiresIn).toBe(600);
    const [header, payload] = body.accessToken.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>);
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    expect(typeof header!.kid).toBe('string');
    expect(payload).toMatchObject({ iss: 'archipelago-iam', aud: 'archipelago', roles: ['admin'] });
    expect(Object.keys(payload!).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'roles', 'sid', 'sub']);
    const me = await app.inject({ url: '/api/v1/auth/me', headers: bearer(body.accessToken) });
    expect(me.statusCode).toBe(200);
    const profile = me.json<{ email: string; roles: string[]; permissions: string[] }>();
    expect(profile).toMatchObject({ email: ADMIN.email, roles: ['admin'] });
    expect(profile.permissions).toContain('orders:write');
    expect(profile.permissions).toContain('users:read');
    const jwks = (await app.inject({ url: '/.well-known/jwks.json' })).json<{ keys: { kid: string; d?: string }[] }>();
    expect(jwks.keys.map((k) => k.kid)).toContain(header!.kid);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
  });

  it('answers an unknown email exactly like a wrong password, and audits both', async () => {
    const wrong = await login(app, ADMIN.email, 'not the password', '203.0.113.7');
    const unknown = await login(app, 'nobody@example.com', 'not the password', '203.0.113.7');
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    const strip = (body: string) => ({ ...(JSON.parse(body) as Record<string, unknown>), instance: undefined });
    expect(strip(wrong.body)).toEqual(strip(unknown.body));
    const audit = await db.selectFrom('auth_audit_log').select(['event', 'detail']).where('event', '=', 'login.failure').where('ip', '=', '203.0.113.7').execute();
    expect(audit.map((a) => (a.detail as { reason: string }).reason).sort()).toEqual(['unknown-email', 'wrong-password']);
  });

  it('slows guesses at an account from one address with growing delays, while the owner signs in from another', async () => {
    await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(await tokenOf(app)), payload: { email: 'locked@example.com', display_name: 'L', password: 'a long enough password' } });
    for (let i = 0; i < 5; i++) expect((await login(app, 'locked@example.com', 'wrong', '192.0.2.1')).statusCode).toBe(401);
    const locked = await login(app, 'locked@example.com', 'a long enough password', '192.0.2.1');
    expect(locked.statusCode).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(locked.headers['retry-after'])).toBeLessThanOrEqual(30);
    // The owner, elsewhere, is not locked out by someone else's guesses (the attack of issue 9 item 5).
    expect((await login(app, 'locked@example.com', 'a long enough password', '192.0.2.99')).statusCode).toBe(200);
    // An unknown email is throttled the same way: the limit does not reveal which accounts exist.
    for (let i = 0; i < 5; i++) await login(app, 'ghost@example.com', 'wrong', '192.0.2.1');
    expect((await login(app, 'ghost@example.com', 'wrong', '192.0.2.1')).statusCode).toBe(429);
    // Each guess after a delay has run out earns a longer one.
    clock.offsetMs = 31_000;
    try {
      expect((await login(app, 'locked@example.com', 'wrong', '192.0.2.1')).statusCode).toBe(401);
      const longer = await login(app, 'locked@example.com', 'wrong', '192.0.2.1');
      expect(longer.statusCode).toBe(429);
      expect(Number(longer.headers['retry-after'])).toBeGreaterThan(30);
      clock.offsetMs = 31_000 + 61_000;
      expect((await login(app, 'locked@example.com', 'a long enough password', '192.0.2.1')).statusCode).toBe(200);
    } finally {
      clock.offsetMs = 0;
    }
    expect(await db.selectFrom('auth_audit_log').select('id').where('event', '=', 'login.locked').where('email', '=', 'locked@example.com').execute()).toHaveLength(2);
  });

  it('counts the longest email from the longest address like any other', async () => {
    const email = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(53)}.example`;
    expect(email.length).toBe(254);
    const response = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'wrong' }, remoteAddress: `${'f'.repeat(50)}::${'e'.repeat(12)}` });
    expect(response.statusCode, response.body).toBe(401);
  });

  it('gives parallel guesses no more tries than sequential ones, from one address or from many', async () => {
    await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(await tokenOf(app)), payload: { email: 'raced@example.com', display_name: 'R', password: 'a long enough password' } });
    const count = (responses: { statusCode: number }[]) => responses.reduce<Record<number, number>>((all, r) => ({ ...all, [r.statusCode]: (all[r.statusCode] ?? 0) + 1 }), {});
    expect(count(await Promise.all(Array.from({ length: 20 }, (_, i) => login(app, 'raced@example.com', `guess ${i}`, '192.0.2.100'))))).toEqual({ 401: 5, 429: 15 });

    // Many addresses guessing one account (a distributed attack) are stopped by the account's limit …
    await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(await tokenOf(app)), payload: { email: 'spread@example.com', display_name: 'S', password: 'a long enough password' } });
    expect((await login(app, 'spread@example.com', 'a long enough password', '192.0.2.200')).statusCode).toBe(200);
    const spread = await Promise.all(Array.from({ length: 40 }, (_, i) => login(app, 'spread@example.com', `guess ${i}`, `198.18.0.${i}`)));
    expect(count(spread)).toEqual({ 401: 20, 429: 20 });
    expect((await login(app, 'spread@example.com', 'a long enough password', '198.18.1.1')).statusCode).toBe(429);
    // … which spares an address the owner signed in from before.
    expect((await login(app, 'spread@example.com', 'a long enough password', '192.0.2.200')).statusCode).toBe(200);
  });

  it('locks an address after many failures across accounts', async () => {
    const { app: strict } = await startIam({ ipThrottle: { maxFailures: 3, windowSeconds: 900, lockSeconds: 900, maxLockSeconds: 900 } });
    for (let i = 0; i < 3; i++) await login(strict, `user${i}@example.com`, 'wrong', '203.0.113.200');
    expect((await login(strict, ADMIN.email, ADMIN.password, '203.0.113.200')).statusCode).toBe(429);
    expect((await login(strict, ADMIN.email, ADMIN.password, '203.0.113.201')).statusCode).toBe(200);
    await strict.close();
  });

  it('rejects expired, tampered, alg:none, wrong-key, wrong-audience and malformed tokens with 401 problem+json', async () => {
    const past = await buildIam({ db, logger: false, databaseUrl: database.appUrl, credentials: testCredentials('iam'), settings: { now: () => Date.now() - 3_600_000 } });
    const expired = (await login(past, ADMIN.email, ADMIN.password, '198.51.100.1')).json<{ accessToken: string }>().accessToken;
    await past.close();
    const good = await tokenOf(app);
    const [h, p, s] = good.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, roles: ['admin', 'root'] })).toString('base64url')}.${s}`;
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { kid: string };
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: header.kid })).toString('base64url')}.${p}.`;
    const { privateKey } = generateKeyPairSync('ed25519');
    const wrongKey = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: header.kid }).sign(privateKey);
    for (const [name, token] of Object.entries({ expired, tampered, none, wrongKey, garbage: 'not.a.jwt' })) {
      const response = await app.inject({ url: '/api/v1/auth/me', headers: bearer(token) });
      expect(response.statusCode, name).toBe(401);
      expect(response.headers['content-type'], name).toMatch(/^application\/problem\+json/);
      expect(response.headers['www-authenticate'], name).toMatch(/^Bearer/);
    }
    expect((await app.inject({ url: '/api/v1/auth/me', headers: bearer(expired) })).json()).toMatchObject({ detail: 'The access token has expired' });
    expect((await app.inject({ url: '/api/v1/auth/me' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/v1/auth/me', headers: bearer(good) })).statusCode).toBe(200);

    // A verifier that expects another audience refuses IAM's tokens, valid as they are.
    const elsewhere = await createHttpServer({ service: 'elsewhere', logger: false });
    const subject = JSON.parse(Buffer.from(good.split('.')[1]!, 'base64url').toString()) as { sub: string };
    const sources = { keys: app.iam.keys.verifyKeys, authorization: async () => ({ roles: {}, policies: [] }), apiToken: async () => null, sessionActive: async () => ({ userId: subject.sub, roles: [], departmentCode: null }) };
    const strict = createAuth({ sources, audience: 'another-system' });
    const usual = createAuth({ sources });
    elsewhere.get('/strict', { preHandler: strict.requireUser }, async () => ({ ok: true }));
    elsewhere.get('/usual', { preHandler: usual.requireUser }, async () => ({ ok: true }));
    expect((await elsewhere.inject({ url: '/strict', headers: bearer(good) })).statusCode).toBe(401);
    expect((await elsewhere.inject({ url: '/usual', headers: bearer(good) })).statusCode).toBe(200);
    await elsewhere.close();
  });

  it('rotates refresh tokens; reusing an old one revokes the whole session', async () => {
    const first = (await login(app, ADMIN.email, ADMIN.password, '198.51.100.2')).json<{ accessToken: string; refreshToken: string }>();
    const second = await app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: first.refreshToken } });
    expect(second.statusCode).toBe(200);
    const rotated = second.json<{ refreshToken: string }>();
    expect(rotated.refreshToken).not.toBe(first.refreshToken);
    const third = await app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: rotated.refreshToken } });
    expect(third.statusCode).toBe(200);
    // The first token again: reuse. The session is revoked, so even the newest token stops working.
    const reuse = await app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: first.refreshToken } });
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json<{ detail: string }>().detail).toMatch(/already used/);
    const newest = third.json<{ refreshToken: string }>().refreshToken;
    expect((await app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: newest } })).statusCode).toBe(401);
    expect(await db.selectFrom('auth_audit_log').select('id').where('event', '=', 'refresh.reuse').execute()).toHaveLength(1);
  });

  it('logs out, and lists and revokes the caller\'s own sessions', async () => {
    const a = (await login(app, ADMIN.email, ADMIN.password, '198.51.100.3')).json<{ accessToken: string; refreshToken: string }>();
    const b = (await login(app, ADMIN.email, ADMIN.password, '198.51.100.4')).json<{ accessToken: string; refreshToken: string }>();
    const sessions = (await app.inject({ url: '/api/v1/auth/sessions', headers: bearer(a.accessToken) })).json<{ items: { id: string; current: boolean; ip: string }[] }>().items;
    const other = sessions.find((s) => s.ip === '198.51.100.4')!;
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    expect((await app.inject({ method: 'DELETE', url: `/api/v1/auth/sessions/${other.id}`, headers: bearer(a.accessToken) })).statusCode).toBe(204);
    expect((await app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: b.refreshToken } })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/v1/auth/me', headers: bearer(b.accessToken) })).statusCode).toBe(401); // its access token ended with it

    // Another service, verifying for itself (here without caching the session's state), agrees.
    const elsewhere = await createHttpServer({ service: 'elsewhere', logger: false });
    const remote = createAuth({ sources: remoteAuthSources(await app.listen({ host: '127.0.0.1', port: 0 }), { credentials: testCredentials('core') }), sessionTtlMs: 0 });
    elsewhere.get('/me', { preHandler: remote.requireUser }, async () => ({ ok: true }));
    expect((await elsewhere.inject({ url: '/me', headers: bearer(a.accessToken) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refreshToken: a.refreshToken } })).statusCode).toBe(204);
    expect((await app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: a.refreshToken } })).statusCode).toBe(401);
    expect((await elsewhere.inject({ url: '/me', headers: bearer(a.accessToken) })).json()).toMatchObject({ status: 401, detail: expect.stringContaining('session') as unknown });
    await elsewhere.close();
  });

  it('rotates signing keys: old tokens keep verifying, new ones carry the new kid', async () => {
    const before = await tokenOf(app);
    const rotated = await asPrincipal(app, OPERATOR).inject({ method: 'POST', url: '/internal/v1/signing-keys/rotate' });
    expect(rotated.statusCode).toBe(200);
    const { kid } = rotated.json<{ kid: string }>();
    const after = await tokenOf(app);
    const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    expect(kidOf(after)).toBe(kid);
    expect(kidOf(before)).not.toBe(kid);
    expect((await app.inject({ url: '/api/v1/auth/me', headers: bearer(before) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/v1/auth/me', headers: bearer(after) })).statusCode).toBe(200);
    const published = (await app.inject({ url: '/.well-known/jwks.json' })).json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid);
    expect(published).toEqual(expect.arrayContaining([kidOf(before), kid]));
    // Once the old key's last token has expired, it is no longer published.
    clock.offsetMs = 12 * 60_000;
    try {
      expect((await app.inject({ url: '/.well-known/jwks.json' })).json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid)).not.toContain(kidOf(before));
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('rejects SQL injection attempts and oversized input cleanly', async () => {
    const injection = await login(app, "admin@example.com' OR '1'='1", "' OR 1=1 --");
    expect(injection.statusCode).toBe(400);
    expect(injection.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'body.email' }] });
    const sneaky = await login(app, "x'or'1'='1@example.com", "' OR 1=1 --", '198.51.100.9');
    expect(sneaky.statusCode).toBe(401);
    const long = await login(app, ADMIN.email, 'x'.repeat(10_000));
    expect(long.statusCode).toBe(400);
    expect(long.json()).toMatchObject({ errors: [{ field: 'body.password' }] });
    const huge = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: ADMIN.email, password: 'x'.repeat(100_000) } });
    expect(huge.statusCode).toBe(413);
    const search = await app.inject({ url: `/api/v1/users?search=${encodeURIComponent("%' OR 1=1 --")}`, headers: bearer(await tokenOf(app)) });
    expect(search.json()).toMatchObject({ total: 0 });
    expect((await sql<{ n: number }>`select count(*)::int as n from users`.execute(db)).rows[0]!.n).toBeGreaterThan(0);
  });
});
