import { stat } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { smtpMailer, readMailbox } from '@archipelago/platform/mail';
import { asPrincipal, capturedLogger, freePort, OPERATOR, testCredentials } from '@archipelago/platform/testing';
import { followFeed } from '@archipelago/platform/testing/events';
import type { IamApp } from '../src/app.ts';
import type { IamDatabase } from '../src/database.ts';
import { ADMIN, bearer, startIam, tokenOf } from './helpers.ts';

// Requests from a client address of our choosing (as a direct peer, not through a forwarded header).
const from = (app: IamApp, ip: string) => ({
  inject: (options: { method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'; url: string; payload?: object; headers?: Record<string, string> }) => app.inject({ ...options, remoteAddress: ip }),
});
const requestReset = (app: IamApp, email: string, ip = '203.0.113.50') =>
  from(app, ip).inject({ method: 'POST', url: '/api/v1/auth/password-reset/request', payload: { email } });
const confirmReset = (app: IamApp, token: string, password: string) =>
  app.inject({ method: 'POST', url: '/api/v1/auth/password-reset/confirm', payload: { token, password } });

/** Every row of every table of the database, as text (outbox payloads, audit detail, everything). */
async function everyRow(db: Kysely<IamDatabase>): Promise<string> {
  const tables = await sql<{ schema: string; name: string }>`
    SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`.execute(db);
  const dumps: string[] = [];
  for (const table of tables.rows) {
    const rows = await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(`${table.schema}.${table.name}`)} t`.execute(db);
    dumps.push(`${table.schema}.${table.name}: ${rows.rows.map((r) => r.row).join('\n')}`);
  }
  return dumps.join('\n');
}

describe('a password reset leaves its secret nowhere but in the mail', async () => {
  const captured = capturedLogger('iam');
  const { app, db, mailDir, resetTokenMailedTo } = await startIam({}, { logger: captured.logger });
  afterAll(() => app.close());

  it('keeps the token out of events, the feed, exports, every table and every log line', async () => {
    expect((await requestReset(app, ADMIN.email)).statusCode).toBe(202);
    const token = (await resetTokenMailedTo(ADMIN.email))!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // The feed serves an event once no older transaction of the shared test cluster is running.
    const event = await followFeed<{ type: string; position: string }>(app, (e) => e.type === 'user.password-reset-requested');
    expect(event).toBeDefined();
    const feed = await asPrincipal(app, OPERATOR).inject({ url: '/internal/v1/events?limit=1000' });
    const exported = await asPrincipal(app, OPERATOR).inject({ url: '/internal/v1/export/user' });
    expect(feed.statusCode).toBe(200);
    expect(feed.body).toContain('user.password-reset-requested');
    const rows = await everyRow(db);
    expect(rows).toContain('password-reset.requested'); // the audit log was read
    for (const [where, text] of Object.entries({ feed: feed.body, export: exported.body, rows, log: captured.lines.join('') })) {
      expect(text, where).not.toContain(token);
      expect(text, where).not.toContain('reset-password?token=');
    }
    expect(captured.lines.length).toBeGreaterThan(0);

    // The mailbox is the owner's alone, and the link in it works.
    expect((await stat(mailDir)).mode & 0o777).toBe(0o700);
    const [mail] = await readMailbox(mailDir);
    expect((await stat(path.join(mailDir, `${mail!.id}.json`))).mode & 0o777).toBe(0o600);
    expect((await confirmReset(app, token, 'a brand new admin password')).statusCode).toBe(204);
    expect((await from(app, '198.51.100.77').inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: ADMIN.email, password: 'a brand new admin password' } })).statusCode).toBe(200);
  });
});

describe('reset mail through SMTP', async () => {
  const received: { to: string; body: string }[] = [];
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), body: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => smtp.listen(port, '127.0.0.1', resolve));
  const { app } = await startIam({ mailer: smtpMailer({ url: `smtp://127.0.0.1:${port}`, from: 'Archipelago <iam@example.test>' }) });
  afterAll(async () => {
    await app.close();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  });

  it('delivers the reset link to a real SMTP server, and the link works', async () => {
    expect((await requestReset(app, ADMIN.email)).statusCode).toBe(202);
    await app.iam.mailSettled();
    expect(received).toHaveLength(1);
    expect(received[0]!.to).toBe(ADMIN.email);
    const unfolded = received[0]!.body.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
    const token = /reset-password\?token=([A-Za-z0-9_-]{43})/.exec(unfolded)?.[1];
    expect(token).toBeDefined();
    expect((await confirmReset(app, token!, 'a password from the mail')).statusCode).toBe(204);
  });
});

describe('reset requests: one live link per account, limited per account and per address', async () => {
  const { app, db, mailDir, resetTokenMailedTo } = await startIam({ resetIpThrottle: { maxFailures: 6, windowSeconds: 3600, lockSeconds: 3600, maxLockSeconds: 3600 } });
  afterAll(() => app.close());
  const mails = async (to: string) => {
    await app.iam.mailSettled();
    return (await readMailbox(mailDir)).filter((m) => m.to === to).length;
  };

  it('invalidates the earlier link when a new one is asked for', async () => {
    await requestReset(app, ADMIN.email, '203.0.113.60');
    const first = (await resetTokenMailedTo(ADMIN.email))!;
    await requestReset(app, ADMIN.email, '203.0.113.60');
    const second = (await resetTokenMailedTo(ADMIN.email))!;
    expect(second).not.toBe(first);
    expect((await confirmReset(app, first, 'the first link password')).json()).toMatchObject({ status: 400, errors: [{ field: 'body.token' }] });
    expect((await confirmReset(app, second, 'the second link password')).statusCode).toBe(204);
    expect((await db.selectFrom('password_resets').select('token_hash').where('used_at', 'is', null).execute()).length).toBe(0);
  });

  it('sends at most 3 links an hour per account, and answers exactly the same over the limit', async () => {
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await requestReset(app, 'Admin@Example.com', `203.0.113.${70 + i}`));
    expect(new Set(answers.map((a) => `${a.statusCode} ${a.body}`)).size).toBe(1);
    expect(answers[0]!.statusCode).toBe(202);
    expect(await mails(ADMIN.email)).toBe(2 + 1); // two from the test before, one more, then the limit
    const throttled = await db.selectFrom('auth_audit_log').select('detail').where('event', '=', 'password-reset.throttled').execute();
    expect(throttled.map((t) => (t.detail as { by: string }).by)).toEqual(['account', 'account', 'account', 'account']);
  });

  it('limits one address across accounts, not the same account from elsewhere', async () => {
    const created = await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(await tokenOf(app, ADMIN.email, 'the second link password')), payload: { email: 'busy@example.com', display_name: 'B', password: 'a long enough password' } });
    expect(created.statusCode).toBe(201);
    for (let i = 0; i < 6; i++) expect((await requestReset(app, `nobody${i}@example.com`, '203.0.113.90')).statusCode).toBe(202);
    expect((await requestReset(app, 'busy@example.com', '203.0.113.90')).statusCode).toBe(202);
    expect(await mails('busy@example.com')).toBe(0);
    expect((await requestReset(app, 'busy@example.com', '203.0.113.91')).statusCode).toBe(202);
    expect(await mails('busy@example.com')).toBe(1);
  });
});

describe('API tokens stay off self-service account routes', async () => {
  const { app, resetTokenMailedTo } = await startIam();
  afterAll(() => app.close());

  it('refuses the attack of issue 9: a users:write token changing its owner\'s password, email or sessions', async () => {
    const person = bearer(await tokenOf(app));
    const adminId = (await app.inject({ url: '/api/v1/auth/me', headers: person })).json<{ id: string }>().id;
    const issued = (await app.inject({ method: 'POST', url: '/api/v1/auth/api-tokens', headers: person, payload: { name: 'ci', scopes: ['users:write', 'users:read'] } })).json<{ id: string; token: string }>();
    const machine = bearer(issued.token);
    const attempts = [
      { method: 'PATCH', url: `/api/v1/users/${adminId}`, payload: { password: 'the attacker now knows it' } },
      { method: 'PATCH', url: `/api/v1/users/${adminId}`, payload: { email: 'attacker@example.com' } },
      { method: 'PATCH', url: `/api/v1/users/${adminId}`, payload: { status: 'disabled' }, status: 409 },
      { method: 'DELETE', url: `/api/v1/users/${adminId}`, status: 409 },
      { method: 'DELETE', url: '/api/v1/auth/sessions' },
      { method: 'GET', url: '/api/v1/auth/sessions' },
      { method: 'GET', url: '/api/v1/auth/api-tokens' },
      { method: 'DELETE', url: `/api/v1/auth/api-tokens/${issued.id}` },
      { method: 'POST', url: '/api/v1/auth/api-tokens', payload: { name: 'more', scopes: ['users:read'] } },
    ] as const;
    for (const { status, ...attempt } of attempts.map((a) => ({ status: 403, ...a }))) {
      const response = await app.inject({ ...attempt, headers: machine });
      expect(response.json(), `${attempt.method} ${attempt.url} ${'payload' in attempt ? JSON.stringify(attempt.payload) : ''}`).toMatchObject({ status });
    }
    expect((await from(app, '198.51.100.200').inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: ADMIN.email, password: ADMIN.password } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/v1/auth/me', headers: person })).statusCode).toBe(200); // sessions untouched
    // What the token's scope is for still works.
    expect((await app.inject({ method: 'PATCH', url: `/api/v1/users/${adminId}`, headers: machine, payload: { display_name: 'Renamed by CI' } })).statusCode).toBe(200);
  });

  it('revokes the owner\'s API tokens on a password change and on a reset', async () => {
    const person = bearer(await tokenOf(app));
    const adminId = (await app.inject({ url: '/api/v1/auth/me', headers: person })).json<{ id: string }>().id;
    const mint = async (headers: Record<string, string>) =>
      bearer((await app.inject({ method: 'POST', url: '/api/v1/auth/api-tokens', headers, payload: { name: 'ci', scopes: ['users:read'] } })).json<{ token: string }>().token);
    const before = await mint(person);
    expect((await app.inject({ url: '/api/v1/users', headers: before })).statusCode).toBe(200);
    expect((await app.inject({ method: 'PATCH', url: `/api/v1/users/${adminId}`, headers: person, payload: { password: 'a changed admin password' } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/v1/users', headers: before })).statusCode).toBe(401);

    const again = bearer(await tokenOf(app, ADMIN.email, 'a changed admin password'));
    const second = await mint(again);
    await requestReset(app, ADMIN.email);
    expect((await confirmReset(app, (await resetTokenMailedTo(ADMIN.email))!, 'a reset admin password')).statusCode).toBe(204);
    expect((await app.inject({ url: '/api/v1/users', headers: second })).statusCode).toBe(401);
  });
});

describe('current roles and department, audit of account changes, departments from master data', async () => {
  const { app, db } = await startIam();
  const iamUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  afterAll(() => app.close());
  const admin = bearer(await tokenOf(app));
  const audited = async (event: string, userId?: string) => {
    let query = db.selectFrom('auth_audit_log').select(['user_id', 'detail']).where('event', '=', event);
    if (userId) query = query.where('user_id', '=', userId);
    return query.execute();
  };

  it('applies a demotion and a move to tokens already issued, through the session check', async () => {
    const user = (await app.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { email: 'mover@example.com', display_name: 'M', password: 'a long enough password', roles: ['admin'], department_code: 'D01' } })).json<{ id: string }>();
    const token = bearer(await tokenOf(app, 'mover@example.com', 'a long enough password'));
    // Another service verifying for itself (session answers not cached here; 30 s by default).
    const elsewhere = await createHttpServer({ service: 'elsewhere', logger: false });
    const remote = createAuth({ sources: remoteAuthSources(iamUrl, { credentials: testCredentials('core') }), sessionTtlMs: 0 });
    elsewhere.get('/who', { preHandler: remote.requirePermission('users:write') }, async (request) => remote.userOf(request));
    elsewhere.get('/where', { preHandler: remote.requireUser }, async (request) => remote.userOf(request));
    expect((await elsewhere.inject({ url: '/who', headers: token })).json()).toMatchObject({ roles: ['admin'], departmentCode: 'D01' });
    expect((await app.inject({ method: 'PUT', url: `/api/v1/users/${user.id}/roles`, headers: admin, payload: { roles: ['viewer'] } })).statusCode).toBe(200);
    expect((await elsewhere.inject({ url: '/who', headers: token })).json()).toMatchObject({ status: 403 });
    expect((await app.inject({ url: '/api/v1/auth/me', headers: token })).json<{ permissions: string[] }>().permissions).not.toContain('users:write');
    expect((await app.inject({ method: 'POST', url: '/api/v1/roles', headers: token, payload: { name: 'nope' } })).statusCode).toBe(403); // IAM itself: at once
    expect((await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: admin, payload: { department_code: 'D02' } })).statusCode).toBe(200);
    expect((await elsewhere.inject({ url: '/where', headers: token })).json()).toMatchObject({ roles: ['viewer'], departmentCode: 'D02' });
    await elsewhere.close();
  });

  it('audits password changes, disabling, department changes and policy changes', async () => {
    const user = (await app.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { email: 'audited@example.com', display_name: 'A', password: 'a long enough password', department_code: 'D01' } })).json<{ id: string }>();
    const patch = (payload: object) => app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: admin, payload });
    expect((await patch({ password: 'another long password' })).statusCode).toBe(200);
    expect((await patch({ department_code: 'D02' })).statusCode).toBe(200);
    expect((await patch({ status: 'disabled' })).statusCode).toBe(200);
    expect((await patch({ status: 'active' })).statusCode).toBe(200);
    expect(await audited('password.changed', user.id)).toHaveLength(1);
    expect((await audited('user.department-changed', user.id))[0]!.detail).toMatchObject({ from: 'D01', to: 'D02' });
    expect(await audited('user.disabled', user.id)).toHaveLength(1);
    expect(await audited('user.enabled', user.id)).toHaveLength(1);

    const body = { name: 'no-other-orders', effect: 'deny', permission: 'orders:read', role: 'staff', condition: 'other-department' };
    const policy = (await app.inject({ method: 'POST', url: '/api/v1/policies', headers: admin, payload: body })).json<{ id: string }>();
    expect((await app.inject({ method: 'PUT', url: `/api/v1/policies/${policy.id}`, headers: admin, payload: { ...body, condition: 'always' } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: `/api/v1/policies/${policy.id}`, headers: admin })).statusCode).toBe(204);
    expect(await audited('policy.created')).toHaveLength(1);
    expect((await audited('policy.updated'))[0]!.detail).toMatchObject({ policy: { condition: 'always', previous: { condition: 'other-department' } } });
    expect((await audited('policy.deleted'))[0]!.detail).toMatchObject({ policy: { id: policy.id } });
  });

  it('audits an administrator\'s changes with the address they came from, which no event carries', async () => {
    const admin198 = from(app, '198.51.100.7');
    const user = (await admin198.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { email: 'from-afar@example.com', display_name: 'F', password: 'a long enough password' } })).json<{ id: string }>();
    expect((await admin198.inject({ method: 'PUT', url: `/api/v1/users/${user.id}/roles`, headers: admin, payload: { roles: ['viewer'] } })).statusCode).toBe(200);
    expect((await admin198.inject({ method: 'DELETE', url: `/api/v1/users/${user.id}`, headers: admin })).statusCode).toBe(204);
    const body = { name: 'from-afar', effect: 'deny', permission: 'orders:write', role: 'viewer', condition: 'always' };
    expect((await admin198.inject({ method: 'POST', url: '/api/v1/policies', headers: admin, payload: body })).statusCode).toBe(201);
    const rows = await db.selectFrom('auth_audit_log').select(['event', 'ip']).where('ip', '=', '198.51.100.7').execute();
    expect(rows.map((r) => r.event).sort()).toEqual(['policy.created', 'roles.changed', 'user.created', 'user.deleted']);
    const outbox = await sql<{ metadata: unknown }>`SELECT metadata FROM outbox WHERE aggregate_id = ${user.id}`.execute(db);
    expect(outbox.rows.length).toBeGreaterThan(0);
    for (const { metadata } of outbox.rows) expect(JSON.stringify(metadata)).not.toContain('198.51.100.7');
  });

  it('checks department_code against master data: 422 for an unknown or inactive one', async () => {
    for (const code of ['NOPE', 'CLOSED']) {
      const created = await app.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { email: `dept-${code}@example.com`, display_name: 'D', department_code: code } });
      expect(created.json()).toMatchObject({ status: 422, errors: [{ field: 'body.department_code', value: code }] });
    }
    const user = (await app.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { email: 'dept-ok@example.com', display_name: 'D', department_code: 'D01' } })).json<{ id: string }>();
    expect((await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: admin, payload: { department_code: 'NOPE' } })).json()).toMatchObject({ status: 422, errors: [{ field: 'body.department_code' }] });
    expect((await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: admin, payload: { department_code: null } })).statusCode).toBe(200);
  });
});

describe('a user\'s department while master data is down', async () => {
  const { app, db } = await startIam({ masterdataUrl: `http://127.0.0.1:${await freePort()}` });
  afterAll(() => app.close());

  it('is a 503 with Retry-After, and nothing is written', async () => {
    const response = await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(await tokenOf(app)), payload: { email: 'later@example.com', display_name: 'L', department_code: 'D01' } });
    expect(response.statusCode).toBe(503);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(await db.selectFrom('users').select('id').where('email', '=', 'later@example.com').execute()).toEqual([]);
  });
});
