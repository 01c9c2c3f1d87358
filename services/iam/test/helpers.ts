import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import Type from 'typebox';
import { afterAll } from 'vitest';
import { createHttpServer, type Logger } from '@archipelago/platform';
import { mailboxMailer, readMailbox } from '@archipelago/platform/mail';
import { useTestDatabase } from '@archipelago/platform/testing';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { buildIam, type IamApp } from '../src/app.ts';
import type { IamDatabase } from '../src/database.ts';
import { seedIam } from '../src/seed.ts';
import type { IamSettings } from '../src/settings.ts';

export const ADMIN = { email: 'admin@example.com', password: 'correct horse battery staple' };

/**
 * Master data's side of IAM's tests: answers `/internal/v1/departments/validate` on loopback for
 * these departments (code → active). The real pair is exercised in tests/system.
 */
export async function startDepartments(departments: Record<string, boolean>) {
  const app = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
  app.post('/internal/v1/departments/validate', { schema: { body: Type.Object({ codes: Type.Array(Type.String()) }) } }, async (request) => ({
    items: request.body.codes.filter((code) => code in departments).map((code) => ({ code, active: departments[code]! })),
  }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}

/** A fresh, seeded iam database and an app on it whose clock the test can move; mail goes to a temporary mailbox. */
export async function startIam(settings: Partial<IamSettings> = {}, options: { logger?: Logger } = {}) {
  const database = await useTestDatabase('iam');
  const db = database.db as Kysely<IamDatabase>;
  await seedIam(db, { adminEmail: ADMIN.email, adminPassword: ADMIN.password, passwordFile: '/nonexistent', say: () => undefined });
  const mailDir = await mkdtemp(path.join(tmpdir(), 'iam-mail-'));
  const departments = await startDepartments({ D01: true, D02: true, CLOSED: false });
  afterAll(async () => {
    await departments.close();
    await rm(mailDir, { recursive: true, force: true });
  });
  const clock = { offsetMs: 0 };
  const app = await buildIam({
    db,
    logger: options.logger ?? false,
    databaseUrl: database.appUrl,
    credentials: testCredentials('iam'),
    settings: { now: () => Date.now() + clock.offsetMs, mailer: mailboxMailer({ dir: mailDir, from: 'iam@test' }), masterdataUrl: departments.url, ...settings },
  });
  /** The reset token of the newest mail to `to`. */
  const resetTokenMailedTo = async (to: string): Promise<string | undefined> => {
    await app.iam.mailSettled();
    const mail = (await readMailbox(mailDir)).filter((m) => m.to === to).at(-1);
    const link = mail?.text.split('\n').find((line) => line.startsWith('http'));
    return link ? (new URL(link).searchParams.get('token') ?? undefined) : undefined;
  };
  return { database, db, app, clock, mailDir, resetTokenMailedTo };
}

/** Signs in from the client address `ip` (as the direct peer, so no forwarded header is involved). */
export async function login(app: IamApp, email: string, password: string, ip = '203.0.113.1') {
  return app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, remoteAddress: ip });
}

export async function tokenOf(app: IamApp, email = ADMIN.email, password = ADMIN.password): Promise<string> {
  const response = await login(app, email, password, `198.51.100.${Math.floor(Math.random() * 250)}`);
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`);
  return response.json<{ accessToken: string }>().accessToken;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
