import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '@archipelago/platform/testing';
import { verifyPassword } from '../src/crypto/passwords.ts';
import type { IamDatabase } from '../src/database.ts';
import { seedIam } from '../src/seed.ts';

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
