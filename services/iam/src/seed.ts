import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { repositoryRoot } from '@archipelago/platform/layout';
import { appendEvents } from '@archipelago/platform/events';
import { hashPassword } from './crypto/passwords.ts';
import { randomSecret } from './crypto/secrets.ts';
import type { IamDatabase } from './database.ts';
import { userDto } from './users/user.dto.ts';
import { loadRegistry } from '@archipelago/registry';

const DOMAIN = ['resources', 'orders', 'engagements', 'intakes', 'records'];
const ADMINISTRATION = ['users', 'roles', 'policies'];

/** Every permission the services declare (registry `permissions`): registered by every seed run. */
export const SEEDED_PERMISSIONS = [...new Set(loadRegistry(undefined, {}).services.flatMap((s) => s.permissions ?? []))].sort();

// Reporting reads every service's copies (users' emails among them): the admin's alone at first.
const reads = SEEDED_PERMISSIONS.filter((p) => p.endsWith(':read') && p !== 'reporting:read');
/**
 * Default grants; a role keeps whatever an administrator has since made of it, except `admin`,
 * which gets every declared permission on every run (a new service's included).
 */
const DEFAULT_GRANTS: Record<string, { description: string; permissions: readonly string[] }> = {
  admin: { description: 'Full access to every service', permissions: SEEDED_PERMISSIONS },
  staff: {
    description: 'Day-to-day work within their department',
    permissions: [...reads.filter((p) => !p.startsWith('roles:') && !p.startsWith('policies:')), ...DOMAIN.map((r) => `${r}:write`)],
  },
  viewer: { description: 'Read-only access', permissions: reads.filter((p) => !ADMINISTRATION.some((r) => p.startsWith(`${r}:`))) },
};

/**
 * The house rule "staff read only their own department's orders", made to cover changes too (a staff
 * member could otherwise create an order they may not see). Added with the staff role's default
 * grants, once: an administrator who deletes or edits it keeps their choice.
 */
export const SEEDED_POLICIES = [
  {
    name: 'staff-own-department-orders',
    description: "Staff read and change only their own department's orders",
    effect: 'deny',
    permission: 'orders:*',
    role: 'staff',
    condition: 'other-department',
  },
] as const;

export interface SeedOptions {
  readonly adminEmail: string;
  /** When absent, a random password is generated, printed once and written to `passwordFile`. */
  readonly adminPassword?: string;
  readonly passwordFile: string;
  readonly say: (line: string) => void;
  /** Every permission to register and grant to `admin`; by default the ones the registry declares. */
  readonly permissions?: readonly string[];
}

// Roles, permissions and the first administrator; safe to run on every start.
export async function seed(db: Kysely<unknown>): Promise<void> {
  const dataDir = path.resolve(process.env.ARCHIPELAGO_DATA_DIR ?? path.join(repositoryRoot, '.data'));
  await seedIam(db as Kysely<IamDatabase>, {
    adminEmail: process.env.ADMIN_EMAIL || 'admin@example.com',
    adminPassword: process.env.ADMIN_PASSWORD || undefined,
    passwordFile: path.join(dataDir, 'iam-admin-password.txt'),
    say: (line) => process.stdout.write(`${line}\n`),
  });
}

/** The seed with its inputs explicit (tests pass their own). */
export async function seedIam(db: Kysely<IamDatabase>, options: SeedOptions): Promise<void> {
  const permissions = options.permissions ?? SEEDED_PERMISSIONS;
  const grants = { ...DEFAULT_GRANTS, admin: { ...DEFAULT_GRANTS.admin!, permissions } };
  await db.transaction().execute(async (trx) => {
    if (permissions.length > 0) await trx.insertInto('permissions').values(permissions.map((name) => ({ name }))).onConflict((oc) => oc.column('name').doNothing()).execute();
    for (const [name, grant] of Object.entries(grants)) {
      await trx.insertInto('roles').values({ name, description: grant.description }).onConflict((oc) => oc.column('name').doNothing()).execute();
      const role = await trx.selectFrom('roles').select('id').where('name', '=', name).executeTakeFirstOrThrow();
      const held = await trx.selectFrom('role_permissions').select('permission_id').where('role_id', '=', role.id).executeTakeFirst();
      if (held && name !== 'admin') continue;
      await sql`
        INSERT INTO role_permissions (role_id, permission_id)
        SELECT ${role.id}, id FROM permissions WHERE name = ANY(${grant.permissions})
        ON CONFLICT DO NOTHING`.execute(trx);
      if (held) continue;
      const policies = SEEDED_POLICIES.filter((policy) => policy.role === name);
      if (policies.length === 0) continue;
      await trx
        .insertInto('policies')
        .values(policies.map((p) => ({ name: p.name, description: p.description, effect: p.effect, permission: p.permission, condition: p.condition, role_id: role.id })))
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
    }
  });

  const existing = await db.selectFrom('users').select('id').where(sql<string>`lower(email)`, '=', options.adminEmail.toLowerCase()).where('deleted_at', 'is', null).executeTakeFirst();
  if (existing) return;
  const password = options.adminPassword ?? randomSecret(18);
  const passwordHash = await hashPassword(password);
  await db.transaction().execute(async (trx) => {
    const user = await trx
      .insertInto('users')
      .values({ email: options.adminEmail, display_name: 'Administrator', password_hash: passwordHash, department_code: null })
      .returningAll()
      .executeTakeFirstOrThrow();
    const admin = await trx.selectFrom('roles').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow();
    await trx.insertInto('user_roles').values({ user_id: user.id, role_id: admin.id }).execute();
    await appendEvents(trx, [{ type: 'user.created', aggregateType: 'user', aggregateId: user.id, aggregateVersion: user.version, payload: userDto(user, ['admin']) }]);
  });
  if (options.adminPassword === undefined) {
    await mkdir(path.dirname(options.passwordFile), { recursive: true });
    await writeFile(options.passwordFile, `${options.adminEmail}\n${password}\n`, { mode: 0o600 });
    await chmod(options.passwordFile, 0o600);
    options.say(`  iam: created the administrator ${options.adminEmail} with password ${password}`);
    options.say(`       (shown once; also in ${options.passwordFile}, readable by you only)`);
  } else {
    options.say(`  iam: created the administrator ${options.adminEmail} (password from ADMIN_PASSWORD)`);
  }
}
