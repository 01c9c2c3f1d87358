import type { Kysely } from 'kysely';
import { useTestDatabase } from '@archipelago/platform/testing';
import { asPrincipal, testCredentials } from '@archipelago/platform/testing/credentials';
import { buildIam, type IamApp } from '../src/app.ts';
import type { IamDatabase } from '../src/database.ts';
import { seedIam } from '../src/seed.ts';
import type { IamSettings } from '../src/settings.ts';

export const ADMIN = { email: 'admin@example.com', password: 'correct horse battery staple' };

/** A fresh, seeded iam database and an app on it whose clock the test can move. */
export async function startIam(settings: Partial<IamSettings> = {}) {
  const database = await useTestDatabase('iam');
  const db = database.db as Kysely<IamDatabase>;
  await seedIam(db, { adminEmail: ADMIN.email, adminPassword: ADMIN.password, passwordFile: '/nonexistent', say: () => undefined });
  const clock = { offsetMs: 0 };
  const app = await buildIam({ db, logger: false, databaseUrl: database.appUrl, credentials: testCredentials('iam'), settings: { now: () => Date.now() + clock.offsetMs, ...settings } });
  return { database, db, app, clock };
}

/** Signs in as a client at `ip` would through the gateway (whose token makes X-Forwarded-For count). */
export async function login(app: IamApp, email: string, password: string, ip = '203.0.113.1') {
  return asPrincipal(app, 'gateway', 'iam').inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, headers: { 'x-forwarded-for': ip } });
}

export async function tokenOf(app: IamApp, email = ADMIN.email, password = ADMIN.password): Promise<string> {
  const response = await login(app, email, password, `198.51.100.${Math.floor(Math.random() * 250)}`);
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`);
  return response.json<{ accessToken: string }>().accessToken;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
