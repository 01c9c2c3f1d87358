import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import Type from 'typebox';
import { afterAll } from 'vitest';
import { createHttpServer, peerUrls, type Logger } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { appendEvents, registerEventFeed } from '@archipelago/platform/events';
import { useTestDatabase } from '@archipelago/platform/testing';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { asUser, startTestIdentity, type TestUser } from '@archipelago/platform/testing/identity';
import { buildApp, type NotificationApp } from '../src/app.ts';
import { fileObjectStore, type ObjectStore } from '../src/archive/object-store.ts';
import type { NotificationDatabase } from '../src/database.ts';

export const DEPARTMENTS = ['LAB', 'RADIO', 'PHARM'];
const ROLES = {
  admin: ['notifications:read', 'notifications:write', 'orders:read'],
  staff: ['notifications:read', 'orders:read'],
  outsider: ['orders:read'],
};

/** An order as core's events carry it. */
export interface OrderPayload {
  id: string;
  order_code: string;
  item_name: string;
  quantity: number;
  status: string;
  department_code: string;
  created_by: string | null;
  version: number;
  previous_status?: string;
}

/**
 * Stand-ins for notification's peers, on loopback with real service tokens: core's event feed
 * (the platform's feed over a real core database's outbox, where tests append order events) and
 * its order export, and masterdata's department check.
 */
async function startPeers() {
  const coreDatabase = await useTestDatabase('core');
  const orders = new Map<string, OrderPayload>();
  const core = await createHttpServer({ service: 'core', logger: false, credentials: testCredentials('core') });
  await registerEventFeed(core, { source: 'core', schema: 'core', db: coreDatabase.db, listenUrl: coreDatabase.appUrl });
  core.get('/internal/v1/export/order', { schema: { querystring: Type.Object({ after: Type.Optional(Type.String()), limit: Type.Integer({ default: 500 }) }) } }, async (request) => {
    const items = [...orders.values()].sort((a, b) => a.id.localeCompare(b.id)).filter((o) => request.query.after === undefined || o.id > request.query.after);
    return { items: items.slice(0, request.query.limit), next: items.length > request.query.limit ? items[request.query.limit - 1]!.id : null };
  });
  const masterdata = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
  masterdata.post('/internal/v1/departments/validate', { schema: { body: Type.Object({ codes: Type.Array(Type.String()) }) } }, async (request) => ({
    items: request.body.codes.filter((code) => DEPARTMENTS.includes(code)).map((code) => ({ code, active: true })),
  }));
  const coreUrl = await core.listen({ host: '127.0.0.1', port: 0 });
  const masterdataUrl = await masterdata.listen({ host: '127.0.0.1', port: 0 });
  return {
    coreUrl,
    masterdataUrl,
    /** Commits an order event in core's outbox, as core's order service does. */
    async publish(type: 'order.created' | 'order.status-changed', order: OrderPayload) {
      orders.set(order.id, order);
      await coreDatabase.db.transaction().execute(async (trx) => {
        await appendEvents(trx, [{ type, aggregateType: 'order', aggregateId: order.id, aggregateVersion: order.version, payload: order }]);
      });
    },
    async close() {
      await core.close();
      await masterdata.close();
    },
  };
}

export interface NotificationTestOptions {
  readonly instances?: number;
  /** Where archives go (default: a temp directory); `'env'`: from `env`, as in production. */
  readonly archives?: ObjectStore | 'env';
  /** Variables beyond LOOKUP_RECONCILE_AT=off. */
  readonly env?: Readonly<Record<string, string>>;
  readonly logger?: Logger;
  /** Several instances share this Redis (badge cache, Socket.IO adapter). */
  readonly redisUrl?: string;
  /** Live delivery's fallback poll (default 1 s); a long one leaves delivery to the wake-ups alone. */
  readonly pollMs?: number;
}

type Counts = { total: number; CRITICAL: number; HIGH: number; NORMAL: number; LOW: number };

/** A viewer's unread notifications counted over the tables themselves (what served counts must equal). */
export async function freshUnreadCounts(db: Kysely<NotificationDatabase>, viewer: { userId: string; departmentCode: string | null }): Promise<Counts> {
  const rows = await sql<{ priority: Exclude<keyof Counts, 'total'>; n: string }>`
    SELECT n.priority, count(*) AS n FROM notifications n
    WHERE n.deleted_at IS NULL AND (n.user_id = ${viewer.userId}::uuid OR (n.user_id IS NULL AND n.department_code = ${viewer.departmentCode}))
      AND NOT EXISTS (SELECT 1 FROM notification_receipts r WHERE r.user_id = ${viewer.userId}::uuid AND r.notification_id = n.id AND (r.read_at IS NOT NULL OR r.archived_at IS NOT NULL))
    GROUP BY n.priority`.execute(db);
  const counts: Counts = { total: 0, CRITICAL: 0, HIGH: 0, NORMAL: 0, LOW: 0 };
  for (const row of rows.rows) {
    counts[row.priority] = Number(row.n);
    counts.total += Number(row.n);
  }
  return counts;
}

/** A notification app on a fresh database, with a test IAM, and stand-ins for core and masterdata. */
export async function notificationTestApp(options: NotificationTestOptions = {}) {
  const database = await useTestDatabase('notification');
  const identity = await startTestIdentity({ roles: ROLES });
  const peers = await startPeers();
  const db = database.db as Kysely<NotificationDatabase>;
  const archiveDir = await mkdtemp(path.join(tmpdir(), 'notification-archives-'));
  const build = () =>
    buildApp({
      db, logger: options.logger ?? false, databaseUrl: database.appUrl, env: { LOOKUP_RECONCILE_AT: 'off', ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}), ...options.env }, credentials: testCredentials('notification'),
      peer: peerUrls('notification', { iam: identity.url, core: peers.coreUrl, masterdata: peers.masterdataUrl }),
      auth: createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('notification') }), sessionTtlMs: 0 }),
      archives: options.archives === 'env' ? undefined : (options.archives ?? fileObjectStore(archiveDir)),
      pollMs: options.pollMs,
    });
  const apps: NotificationApp[] = [];
  for (let i = 0; i < (options.instances ?? 1); i++) apps.push(await build());
  afterAll(async () => {
    for (const app of apps) await app.close();
    await peers.close();
    await identity.close();
    await rm(archiveDir, { recursive: true, force: true });
  });
  const server = apps[0]!;
  const as = async (user: TestUser) => asUser(server, await identity.token(user));
  const count = async (where = sql`true`) => Number((await sql<{ n: string }>`SELECT count(*) AS n FROM notifications WHERE ${where}`.execute(db)).rows[0]!.n);
  return { server, apps, identity, peers, database, db, as, count, archiveDir };
}
