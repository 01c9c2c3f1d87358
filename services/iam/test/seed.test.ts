import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '@archipelago/platform/testing';
import { verifyPassword } from '../src/crypto/passwords.ts';
import type { IamDatabase } from '../src/database.ts';
import { loadRegistry, serviceDefinitions, type ServiceDefinition } from '@archipelago/registry';
import { SEEDED_PERMISSIONS, seedIam } from '../src/seed.ts';

describe('the iam seed', async () => {
  const database = await useTestDatabase('iam');
  const db = database.db as Kysely<IamDatabase>;
  const dir = await mkdtemp(path.join(tmpdir(), 'iam-seed-'));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('creates the administrator once, with a random password shown once and kept in a file only the owner reads', async () => {
    const passwordFile = path.join(dir, 'iam-admin-password.txt');
    const said: string[] = [];
    await seedIam(db, { adminEmail: 'Root@Example.com', passwordFile, say: (line) => said.push(line) });
    await seedIam(db, { adminEmail: 'root@example.com', passwordFile, say: (line) => said.push(line) });
    const [email, password] = (await readFile(passwordFile, 'utf8')).trim().split('\n');
    expect(email).toBe('Root@Example.com');
    expect(password!.length).toBeGreaterThanOrEqual(24);
    expect((await stat(passwordFile)).mode & 0o777).toBe(0o600);
    expect(said.filter((line) => line.includes(password!))).toHaveLength(1);
    const admins = await db.selectFrom('users').innerJoin('user_roles', 'user_roles.user_id', 'users.id').innerJoin('roles', 'roles.id', 'user_roles.role_id').select(['users.password_hash', 'roles.name']).execute();
    expect(admins).toHaveLength(1);
    expect(admins[0]!.name).toBe('admin');
    expect(admins[0]!.password_hash).toMatch(/^\$argon2id\$/);
    expect(await verifyPassword(admins[0]!.password_hash, password!)).toBe(true);
  });
});

describe("the iam seed's policies", async () => {
  const database = await useTestDatabase('iam');
  const db = database.db as Kysely<IamDatabase>;
  const seedOnce = () => seedIam(db, { adminEmail: 'root@example.com', adminPassword: 'a long enough password', passwordFile: '/nonexistent', say: () => undefined });
  const policies = () => db.selectFrom('policies').innerJoin('roles', 'roles.id', 'policies.role_id').select(['policies.name', 'effect', 'permission', 'roles.name as role', 'condition']).execute();

  it("seeds the own-department policy for staff once, and keeps an administrator's deletion", async () => {
    await seedOnce();
    await seedOnce();
    expect(await policies()).toEqual([{ name: 'staff-own-department-orders', effect: 'deny', permission: 'orders:*', role: 'staff', condition: 'other-department' }]);
    await db.deleteFrom('policies').execute();
    await seedOnce();
    expect(await policies()).toEqual([]);
  });
});

describe("the iam seed's permissions", async () => {
  const database = await useTestDatabase('iam');
  const db = database.db as Kysely<IamDatabase>;
  const adminHas = () => db.selectFrom('role_permissions').innerJoin('roles', 'roles.id', 'role_permissions.role_id').innerJoin('permissions', 'permissions.id', 'role_permissions.permission_id')
    .select('permissions.name').where('roles.name', '=', 'admin').orderBy('permissions.name').execute().then((rows) => rows.map((r) => r.name));

  it('registers every permission the registry declares and grants it to admin', async () => {
    expect(SEEDED_PERMISSIONS).toEqual(expect.arrayContaining(['labels:read', 'orders:write', 'reports:read', 'users:write']));
    for (const service of loadRegistry(undefined, {}).services) {
      for (const permission of service.permissions ?? []) expect(SEEDED_PERMISSIONS, service.key).toContain(permission);
    }
    await seedIam(db, { adminEmail: 'root@example.com', adminPassword: 'a long enough password', passwordFile: '/nonexistent', say: () => undefined });
    expect(await adminHas()).toEqual(SEEDED_PERMISSIONS);
  });

  it("follows a new service's declaration on the next run, without touching the seed", async () => {
    const definitions: Record<string, ServiceDefinition> = {
      ...serviceDefinitions,
      'added-later': { hostname: 'added-later', port: 4190, database: '', layer: 'domain', label: 'Added later', routes: [], permissions: ['audit-entries:read'] },
    };
    const permissions = [...new Set(loadRegistry(definitions, {}).services.flatMap((s) => s.permissions ?? []))].sort();
    await seedIam(db, { adminEmail: 'root@example.com', adminPassword: 'a long enough password', passwordFile: '/nonexistent', say: () => undefined, permissions });
    expect(await adminHas()).toContain('audit-entries:read');
    const staff = await db.selectFrom('role_permissions').innerJoin('roles', 'roles.id', 'role_permissions.role_id').innerJoin('permissions', 'permissions.id', 'role_permissions.permission_id')
      .select('permissions.name').where('roles.name', '=', 'staff').where('permissions.name', '=', 'audit-entries:read').execute();
    expect(staff).toEqual([]);
  });
});
