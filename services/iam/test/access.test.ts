import { afterAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { asPrincipal, testCredentials } from '@archipelago/platform/testing/credentials';
import { recordedEvents } from '@archipelago/platform/testing/events';
import { sql } from 'kysely';
import { auditPurgeJob } from '../src/audit/audit.purge.ts';
import { auditLog } from '../src/audit/audit.repository.ts';
import { SEEDED_PERMISSIONS } from '../src/seed.ts';
import { bearer, login, startIam, tokenOf } from './helpers.ts';

interface FeedEvent { type: string; aggregate: { type: string; id: string; version: number }; payload: Record<string, unknown> }

describe('iam users, roles, policies, API tokens and internal endpoints', async () => {
  const { app, db, database, resetTokenMailedTo } = await startIam();
  const iamUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  afterAll(() => app.close());
  const admin = bearer(await tokenOf(app));
  const feed = () => recordedEvents<FeedEvent>(database.db);
  const createUser = async (email: string, roles: string[], department_code: string | null = null) => {
    const response = await app.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { email, display_name: email, password: 'a long enough password', roles, department_code } });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{ id: string; version: number }>();
  };

  it('seeds roles with their permissions', async () => {
    const roles = (await app.inject({ url: '/api/v1/roles', headers: admin })).json<{ items: { name: string; permissions: string[] }[] }>().items;
    expect(roles.map((r) => r.name)).toEqual(['admin', 'staff', 'viewer']);
    expect(roles[0]!.permissions).toEqual(SEEDED_PERMISSIONS);
    expect(roles[1]!.permissions).toEqual(expect.arrayContaining(['labels:read', 'orders:write', 'reports:read']) as unknown);
    expect(roles[1]!.permissions).not.toContain('labels:write');
    expect(roles[2]!.permissions.every((p) => p.endsWith(':read'))).toBe(true);
  });

  it('creates, pages, updates and deletes users, each change with its event and no secret in it', async () => {
    const created = await createUser('Mixed.Case@Example.com', ['staff'], 'D01');
    expect((await app.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { email: 'mixed.case@example.com', display_name: 'x' } })).statusCode).toBe(409);
    const page = (await app.inject({ url: '/api/v1/users?limit=1&offset=0', headers: admin })).json<{ items: unknown[]; total: number; limit: number }>();
    expect(page).toMatchObject({ total: 2, limit: 1 });
    expect(page.items).toHaveLength(1);
    const updated = await app.inject({ method: 'PATCH', url: `/api/v1/users/${created.id}`, headers: admin, payload: { display_name: 'Renamed' } });
    expect(updated.json()).toMatchObject({ display_name: 'Renamed', version: created.version + 1 });
    expect((await app.inject({ method: 'DELETE', url: `/api/v1/users/${created.id}`, headers: admin })).statusCode).toBe(204);
    expect((await app.inject({ url: `/api/v1/users/${created.id}`, headers: admin })).statusCode).toBe(404);
    const events = (await feed()).filter((e) => e.aggregate.id === created.id);
    expect(events.map((e) => [e.type, e.aggregate.type, e.aggregate.version])).toEqual([
      ['user.created', 'user', 1],
      ['user.updated', 'user', 2],
      ['user.deleted', 'user', 3],
    ]);
    expect(JSON.stringify(events)).not.toMatch(/password|argon2/);
  });

  it('validates user ids in batches and exports users page by page', async () => {
    const kept = await createUser('kept@example.com', ['viewer']);
    const disabled = await createUser('disabled@example.com', []);
    await app.inject({ method: 'PATCH', url: `/api/v1/users/${disabled.id}`, headers: admin, payload: { status: 'disabled' } });
    const gone = await createUser('gone@example.com', []);
    await app.inject({ method: 'DELETE', url: `/api/v1/users/${gone.id}`, headers: admin });
    const unknown = '00000000-0000-4000-8000-000000000000';
    const core = asPrincipal(app, 'core', 'iam');
    const validated = await core.inject({ method: 'POST', url: '/internal/v1/users/validate', payload: { ids: [kept.id, disabled.id, gone.id, unknown, kept.id] } });
    expect(validated.statusCode).toBe(200);
    expect(validated.json<{ users: unknown[] }>().users).toEqual(
      [{ id: kept.id, active: true }, { id: disabled.id, active: false }].sort((a, b) => a.id.localeCompare(b.id)),
    );
    const tooMany = await core.inject({ method: 'POST', url: '/internal/v1/users/validate', payload: { ids: Array.from({ length: 1001 }, () => unknown) } });
    expect(tooMany.statusCode).toBe(400);
    expect((await core.inject({ method: 'POST', url: '/internal/v1/users/validate', payload: { ids: ['not-a-uuid'] } })).json()).toMatchObject({ errors: [{ field: 'body.ids.0' }] });
    const ids: string[] = [];
    let after: string | null = null;
    do {
      const page: { items: { id: string }[]; next: string | null } = (await core.inject({ url: `/internal/v1/export/user?limit=2${after ? `&after=${after}` : ''}` })).json();
      ids.push(...page.items.map((u) => u.id));
      after = page.next;
    } while (after);
    expect(ids).toContain(kept.id);
    expect(ids).not.toContain(gone.id);
    expect(ids).toEqual([...ids].sort());
    // The export holds what the feed holds: a service that does not read IAM's feed may not page through it either.
    // (Every service that verifies tokens reads it; the gateway, stateless, does not.)
    const gateway = await asPrincipal(app, 'gateway', 'iam').inject({ url: '/internal/v1/export/user' });
    expect(gateway.statusCode).toBe(403);
    expect(gateway.body).not.toContain(kept.id);
  });

  it('guards routes by permission: 401 without a token, 403 without the permission', async () => {
    await createUser('viewer@example.com', ['viewer']);
    const viewer = bearer(await tokenOf(app, 'viewer@example.com', 'a long enough password'));
    expect((await app.inject({ url: '/api/v1/users' })).statusCode).toBe(401);
    const forbidden = await app.inject({ url: '/api/v1/users', headers: viewer });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect((await app.inject({ method: 'POST', url: '/api/v1/roles', headers: viewer, payload: { name: 'x' } })).statusCode).toBe(403);
  });

  it('applies role permission changes to existing tokens and records role.permissions-changed', async () => {
    await createUser('auditor@example.com', ['viewer']);
    const auditor = bearer(await tokenOf(app, 'auditor@example.com', 'a long enough password'));
    expect((await app.inject({ url: '/api/v1/policies', headers: auditor })).statusCode).toBe(403);
    const role = await app.inject({ method: 'POST', url: '/api/v1/roles', headers: admin, payload: { name: 'auditor', permissions: ['policies:read'] } });
    expect(role.statusCode).toBe(201);
    const user = (await app.inject({ url: '/api/v1/users?search=auditor', headers: admin })).json<{ items: { id: string }[] }>().items[0]!;
    expect((await app.inject({ method: 'PUT', url: `/api/v1/users/${user.id}/roles`, headers: admin, payload: { roles: ['viewer', 'auditor'] } })).json()).toMatchObject({ roles: ['auditor', 'viewer'] });
    const again = bearer(await tokenOf(app, 'auditor@example.com', 'a long enough password'));
    expect((await app.inject({ url: '/api/v1/policies', headers: again })).statusCode).toBe(200);
    await app.inject({ method: 'PUT', url: '/api/v1/roles/auditor/permissions', headers: admin, payload: { permissions: [] } });
    expect((await app.inject({ url: '/api/v1/policies', headers: again })).statusCode).toBe(403);
    const unknown = await app.inject({ method: 'PUT', url: '/api/v1/roles/auditor/permissions', headers: admin, payload: { permissions: ['nothing:here'] } });
    expect(unknown.json()).toMatchObject({ status: 400, errors: [{ field: 'body.permissions', value: 'nothing:here' }] });
    const changes = (await feed()).filter((e) => e.type === 'role.permissions-changed' && e.aggregate.id === 'auditor');
    expect(changes.map((e) => e.payload.permissions)).toEqual([['policies:read'], []]);
    expect(await db.selectFrom('auth_audit_log').select('id').where('event', '=', 'roles.changed').where('user_id', '=', user.id).execute()).toHaveLength(1);
  });

  it('evaluates policies: allow, deny, deny wins, and department conditions', async () => {
    const staffUser = await createUser('staff@example.com', ['staff'], 'D01');
    const staff = bearer(await tokenOf(app, 'staff@example.com', 'a long enough password'));
    const viewer = bearer(await tokenOf(app, 'viewer@example.com', 'a long enough password'));
    const policy = async (body: Record<string, unknown>) => {
      const response = await app.inject({ method: 'POST', url: '/api/v1/policies', headers: admin, payload: { condition: 'always', ...body } });
      expect(response.statusCode, response.body).toBe(201);
      return response.json<{ id: string }>().id;
    };
    // A service's routes with the platform helper, verifying through IAM over HTTP.
    const service = await createHttpServer({ service: 'core', logger: false });
    const auth = createAuth({ sources: remoteAuthSources(iamUrl, { credentials: testCredentials('core') }), authorizationTtlMs: 0 });
    service.get('/users', { preHandler: auth.requirePermission('users:read') }, async (request) => ({ user: request.user }));
    service.get('/orders/:department', { preHandler: auth.requirePermission('orders:read') }, async (request) => {
      await auth.authorize(request, 'orders:read', { departmentCode: (request.params as { department: string }).department });
      return { ok: true };
    });
    try {
      expect((await service.inject({ url: '/users', headers: viewer })).statusCode).toBe(403);
      const allowViewers = await policy({ name: 'viewers read users', effect: 'allow', permission: 'users:read', role: 'viewer' });
      const seen = await service.inject({ url: '/users', headers: viewer });
      expect(seen.statusCode).toBe(200);
      expect(seen.json()).toMatchObject({ user: { roles: ['viewer'], departmentCode: null } });
      const denyAll = await policy({ name: 'nobody reads users', effect: 'deny', permission: 'users:*', role: null });
      expect((await service.inject({ url: '/users', headers: viewer })).statusCode).toBe(403); // deny wins over allow
      expect((await service.inject({ url: '/users', headers: admin })).statusCode).toBe(403); // and over a role's permission
      await app.inject({ method: 'DELETE', url: `/api/v1/policies/${denyAll}`, headers: admin });
      await app.inject({ method: 'DELETE', url: `/api/v1/policies/${allowViewers}`, headers: admin });

      // The seeded own-department policy is deleted, to watch one made through the API take effect.
      const seeded = (await app.inject({ url: '/api/v1/policies', headers: admin })).json<{ items: { id: string; name: string }[] }>().items;
      const ownDepartment = seeded.find((p) => p.name === 'staff-own-department-orders');
      expect(ownDepartment).toBeDefined();
      expect((await service.inject({ url: '/orders/D02', headers: staff })).statusCode).toBe(403);
      await app.inject({ method: 'DELETE', url: `/api/v1/policies/${ownDepartment!.id}`, headers: admin });
      expect((await service.inject({ url: '/orders/D02', headers: staff })).statusCode).toBe(200);
      await policy({ name: 'staff read own department orders only', effect: 'deny', permission: 'orders:read', role: 'staff', condition: 'other-department' });
      expect((await service.inject({ url: '/orders/D01', headers: staff })).statusCode).toBe(200);
      const other = await service.inject({ url: '/orders/D02', headers: staff });
      expect(other.statusCode).toBe(403);
      expect(other.json()).toMatchObject({ code: 'FORBIDDEN', detail: expect.stringContaining('staff read own department orders only') as unknown });
      expect((await service.inject({ url: '/orders/D02', headers: admin })).statusCode).toBe(200);
      expect((await service.inject({ url: '/orders/D02' })).statusCode).toBe(401);
      expect(staffUser.id).toBeTruthy();
    } finally {
      await service.close();
    }
  });

  it('refuses (422) a department condition that no route could apply, on create and on replace', async () => {
    const post = (body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/api/v1/policies', headers: admin, payload: body });
    const deny = { effect: 'deny', role: 'staff', condition: 'other-department' };
    const noDepartment = await post({ ...deny, name: 'labels by department', permission: 'labels:write' });
    expect(noDepartment.json()).toMatchObject({ status: 422, errors: [{ field: 'body.condition', value: 'other-department' }] });
    expect(noDepartment.json<{ detail: string }>().detail).toContain('labels has no department');
    const allow = await post({ ...deny, name: 'allow own department', effect: 'allow', permission: 'orders:read', condition: 'same-department' });
    expect(allow.json()).toMatchObject({ status: 422, errors: [{ field: 'body.effect', value: 'allow' }] });
    for (const permission of ['orders:write', 'engagements:*', 'intakes:read']) {
      expect((await post({ ...deny, name: `deny ${permission}`, permission })).statusCode).toBe(201);
    }
    const kept = await post({ ...deny, name: 'resources anywhere', permission: 'resources:write', condition: 'always' });
    expect(kept.statusCode).toBe(201);
    const replaced = await app.inject({ method: 'PUT', url: `/api/v1/policies/${kept.json<{ id: string }>().id}`, headers: admin, payload: { ...deny, name: 'resources anywhere', permission: 'resources:write' } });
    expect(replaced.statusCode).toBe(422);
    const names = (await app.inject({ url: '/api/v1/policies?limit=100', headers: admin })).json<{ items: { name: string }[] }>().items.map((p) => p.name);
    expect(names).not.toContain('labels by department');
    expect(names).not.toContain('allow own department');
  });

  it('refuses (422) a policy on a permission no service declares, exact or by wildcard', async () => {
    const post = (permission: string) =>
      app.inject({ method: 'POST', url: '/api/v1/policies', headers: admin, payload: { name: `deny ${permission}`, effect: 'deny', role: 'staff', permission } });
    for (const permission of ['orders:fly', 'nothing:read', 'nothing:*', 'user:*']) {
      expect((await post(permission)).json(), permission).toMatchObject({ status: 422, errors: [{ field: 'body.permission', value: permission }] });
    }
    expect((await post('labels:*')).statusCode).toBe(201);
  });

  it('issues API tokens within the owner\'s permissions, accepts them as bearer tokens and counts their use', async () => {
    const beyond = await app.inject({ method: 'POST', url: '/api/v1/auth/api-tokens', headers: bearer(await tokenOf(app, 'viewer@example.com', 'a long enough password')), payload: { name: 'x', scopes: ['users:write'] } });
    expect(beyond.statusCode).toBe(403);
    const created = await app.inject({ method: 'POST', url: '/api/v1/auth/api-tokens', headers: admin, payload: { name: 'ci', scopes: ['users:read'], expiresInDays: 7 } });
    expect(created.statusCode).toBe(201);
    const token = created.json<{ id: string; token: string; prefix: string }>();
    expect(token.token.startsWith(`${token.prefix}_`)).toBe(true);
    const machine = bearer(token.token);
    expect((await app.inject({ url: '/api/v1/users', headers: machine })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/api/v1/roles', headers: machine, payload: { name: 'nope' } })).statusCode).toBe(403);
    // A token cannot mint another, broader one, although its owner could.
    const minted = await app.inject({ method: 'POST', url: '/api/v1/auth/api-tokens', headers: machine, payload: { name: 'escalate', scopes: ['users:write', 'roles:write'] } });
    expect(minted.json()).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    const listed = (await app.inject({ url: '/api/v1/auth/api-tokens', headers: admin })).json<{ items: Record<string, unknown>[] }>().items;
    const mine = listed.find((t) => t.id === token.id)!;
    expect(mine).toMatchObject({ prefix: token.prefix, scopes: ['users:read'] });
    expect(mine.token).toBeUndefined();
    expect(mine.last_used_at).not.toBeNull();
    expect((mine.usage as { count: number }[])[0]!.count).toBe(3);
    const wrongSecret = `${token.prefix}_${'A'.repeat(43)}`;
    expect((await app.inject({ url: '/api/v1/users', headers: bearer(wrongSecret) })).statusCode).toBe(401);
    expect((await app.inject({ method: 'DELETE', url: `/api/v1/auth/api-tokens/${token.id}`, headers: admin })).statusCode).toBe(204);
    expect((await app.inject({ url: '/api/v1/users', headers: machine })).statusCode).toBe(401);
  });

  it('resets a password: same answer for any email, single-use token, every session revoked', async () => {
    await createUser('forgetful@example.com', ['viewer']);
    const session = (await login(app, 'forgetful@example.com', 'a long enough password', '198.51.100.30')).json<{ refreshToken: string }>();
    const known = await app.inject({ method: 'POST', url: '/api/v1/auth/password-reset/request', payload: { email: 'forgetful@example.com' } });
    const unknown = await app.inject({ method: 'POST', url: '/api/v1/auth/password-reset/request', payload: { email: 'nobody@example.com' } });
    expect(known.statusCode).toBe(202);
    expect(unknown.statusCode).toBe(202);
    expect(known.body).toBe(unknown.body);
    const event = (await feed()).find((e) => e.type === 'user.password-reset-requested')!;
    expect(Object.keys(event.payload).sort()).toEqual(['email', 'expiresAt', 'userId']);
    const resetToken = (await resetTokenMailedTo('forgetful@example.com'))!;
    const confirm = () => app.inject({ method: 'POST', url: '/api/v1/auth/password-reset/confirm', payload: { token: resetToken, password: 'a brand new password' } });
    expect((await confirm()).statusCode).toBe(204);
    expect((await confirm()).json()).toMatchObject({ status: 400, errors: [{ field: 'body.token' }] });
    expect((await app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: session.refreshToken } })).statusCode).toBe(401);
    expect((await login(app, 'forgetful@example.com', 'a long enough password', '198.51.100.31')).statusCode).toBe(401);
    expect((await login(app, 'forgetful@example.com', 'a brand new password', '198.51.100.31')).statusCode).toBe(200);
  });

  it('keeps the audit log append-only: iam_app cannot delete rows, only the purge removes entries past retention', async () => {
    await expect(db.updateTable('auth_audit_log').set({ event: 'login.success' } as never).execute()).rejects.toThrow(/append-only/);
    const threeYearsAgo = new Date(Date.now() - 3 * 365 * 86_400_000);
    await db.insertInto('auth_audit_log').values({ event: 'login.success', email: 'old@example.com', occurred_at: threeYearsAgo }).execute();
    // The running service's role (this connection) may not delete audit rows, old or new …
    await expect(db.deleteFrom('auth_audit_log').execute()).rejects.toThrow(/permission denied/);
    await expect(sql`TRUNCATE auth_audit_log`.execute(db)).rejects.toThrow(/permission denied/);
    // … nor ask the purge for a shorter retention than two years.
    await expect(auditLog(db).purgeOlderThan(1)).rejects.toThrow(/at least 730 days/);
    const before = (await db.selectFrom('auth_audit_log').select('id').execute()).length;
    expect(await auditPurgeJob(auditLog(db), { retentionDays: 730 })()).toEqual({ purged: 1 });
    expect((await db.selectFrom('auth_audit_log').select('id').execute()).length).toBe(before - 1);
    expect(await db.selectFrom('auth_audit_log').select('id').where('email', '=', 'old@example.com').execute()).toEqual([]);
  });

  it("keeps a user manager from taking over an administrator by setting their password or email", async () => {
    expect((await app.inject({ method: 'POST', url: '/api/v1/roles', headers: admin, payload: { name: 'user-manager' } })).statusCode).toBe(201);
    expect((await app.inject({ method: 'PUT', url: '/api/v1/roles/user-manager/permissions', headers: admin, payload: { permissions: ['users:read', 'users:write'] } })).statusCode).toBe(200);
    await createUser('manager@example.com', ['user-manager']);
    const manager = bearer(await tokenOf(app, 'manager@example.com', 'a long enough password'));
    const adminId = (await app.inject({ url: '/api/v1/auth/me', headers: admin })).json<{ id: string }>().id;
    const takeover = await app.inject({ method: 'PATCH', url: `/api/v1/users/${adminId}`, headers: manager, payload: { password: 'now it is mine, all mine' } });
    expect(takeover.json()).toMatchObject({ status: 403 });
    expect((await app.inject({ method: 'PATCH', url: `/api/v1/users/${adminId}`, headers: manager, payload: { display_name: 'The Admin' } })).statusCode).toBe(200);
  });
});
