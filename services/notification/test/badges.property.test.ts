import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import { redisInstalled, startRedis } from '@archipelago/platform/testing/redis';
import { freshUnreadCounts, notificationTestApp } from './notification-app.ts';

type Counts = { total: number; CRITICAL: number; HIGH: number; NORMAL: number; LOW: number };
type Step =
  | { kind: 'user'; user: number; priority: string; via: number }
  | { kind: 'broadcast'; department: string; priority: string; via: number }
  | { kind: 'order'; department: string; via: number }
  | { kind: 'read' | 'archive' | 'seen'; user: number; pick: number; via: number }
  | { kind: 'read-all'; user: number; type?: string; via: number };

const USERS: readonly { department: string }[] = [{ department: 'LAB' }, { department: 'LAB' }, { department: 'LAB' }, { department: 'RADIO' }, { department: 'RADIO' }];
const PRIORITY = fc.constantFrom('CRITICAL', 'HIGH', 'NORMAL', 'LOW');
const user = fc.integer({ min: 0, max: USERS.length - 1 });
// Which instance serves the step (with one instance, always the first).
const via = fc.nat(1);
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('user' as const), user, priority: PRIORITY, via }),
  fc.record({ kind: fc.constant('broadcast' as const), department: fc.constantFrom('LAB', 'RADIO'), priority: PRIORITY, via }),
  // Core's order.created, made a department broadcast by the event consumer (live delivery adds it to cached counts).
  fc.record({ kind: fc.constant('order' as const), department: fc.constantFrom('LAB', 'RADIO'), via }),
  fc.record({ kind: fc.constantFrom('read' as const, 'archive' as const, 'seen' as const), user, pick: fc.nat(), via }),
  fc.record({ kind: fc.constant('read-all' as const), user, type: fc.option(fc.constantFrom('A', 'B'), { nil: undefined }), via }),
);

// Random interleavings of creates, broadcasts, reads, read-alls and archives: after every step, the
// count each user is served (by either instance) and the last one pushed to their socket equal a
// fresh count from the tables. Once with one instance and its in-process cache, once with two
// instances on one database sharing a real Redis (steps served by either, sockets on both).
describe.each([
  { setup: 'one instance, in-process cache', instances: 1, redis: false },
  { setup: 'two instances sharing Redis', instances: 2, redis: true },
])('unread badges: $setup', async ({ instances, redis: withRedis }) => {
  // CI installs redis-server (.ci/run); a developer without it sees the Redis case skipped, not passed.
  const skip = withRedis && !redisInstalled && !process.env.CI;
  const redis = withRedis && !skip ? await startRedis() : undefined;
  afterAll(async () => {
    await redis?.stop();
  });
  const { apps, identity, db, peers } = await notificationTestApp({ instances: skip ? 1 : instances, redisUrl: redis?.url });
  const urls = await Promise.all(apps.map((app) => app.listen({ host: '127.0.0.1', port: 0 })));
  const on = (i: number) => apps[i % apps.length]!;
  const adminUser = identity.user({ roles: ['admin'], departmentCode: 'ADMIN' });
  const users = USERS.map((u) => identity.user({ roles: ['staff'], departmentCode: u.department }));
  const tokens = new Map<string, string>(await Promise.all([adminUser, ...users].map(async (u) => [u.id, await identity.token(u)] as const)));
  const inject = (who: typeof adminUser, instance: number, request: { method?: 'GET' | 'POST'; url: string; payload?: object }) =>
    on(instance).inject({ method: request.method ?? 'GET', url: request.url, payload: request.payload, headers: { authorization: `Bearer ${tokens.get(who.id)!}` } });
  const pushed = users.map(() => [] as Counts[]);
  const sockets: Socket[] = await Promise.all(
    users.map(async (u, i) => {
      const socket = connect(urls[i % urls.length], { path: '/socket.io', transports: ['websocket'], auth: { token: await identity.token(u) }, reconnection: false, forceNew: true });
      socket.on('badge:update', (counts: Counts) => pushed[i]!.push(counts));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      return socket;
    }),
  );
  const pushesUntil = async (i: number, length: number) => {
    for (let spins = 0; pushed[i]!.length < length; spins++) {
      if (spins > 2_000) throw new Error(`user ${i} got ${pushed[i]!.length} pushes, waited for ${length}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const fresh = (i: number): Promise<Counts> => freshUnreadCounts(db, { userId: users[i]!.id, departmentCode: users[i]!.departmentCode });
  const created: string[] = [];

  it.skipIf(skip)('served and pushed counts equal a fresh count after every step', async () => {
    await Promise.all(users.map((_, i) => pushesUntil(i, 1)));
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        for (const s of steps) {
          const before = pushed.map((p) => p.length);
          let told: number[] = [];
          if (s.kind === 'user' || s.kind === 'broadcast') {
            const target = s.kind === 'user' ? { user_id: users[s.user]!.id } : { department_code: s.department };
            const response = await inject(adminUser, s.via, { method: 'POST', url: '/api/v1/notifications', payload: { notification_type: Math.random() < 0.5 ? 'A' : 'B', title: 't', message: 'm', priority: s.priority, ...target } });
            expect(response.statusCode).toBe(201);
            created.push(response.json<{ id: string }>().id);
            told = s.kind === 'user' ? [s.user] : users.flatMap((u, i) => (u.departmentCode === s.department ? [i] : []));
          } else if (s.kind === 'order') {
            const id = randomUUID();
            await peers.publish('order.created', { id, order_code: `ORD-${id.slice(0, 8)}`, item_name: 'x', quantity: 1, status: 'PENDING', department_code: s.department, created_by: null, version: 1 });
            told = users.flatMap((u, i) => (u.departmentCode === s.department ? [i] : []));
            for (let spins = 0; ; spins++) {
              const row = await sql<{ id: string }>`SELECT id::text FROM notifications WHERE reference_id = ${id}::uuid`.execute(db);
              if (row.rows[0]) {
                created.push(row.rows[0].id);
                break;
              }
              if (spins > 2_000) throw new Error(`order ${id} made no notification`);
              await new Promise((resolve) => setTimeout(resolve, 5));
            }
          } else if (s.kind === 'read-all') {
            expect((await inject(users[s.user]!, s.via, { method: 'POST', url: `/api/v1/notifications/read-all${s.type ? `?type=${s.type}` : ''}` })).statusCode).toBe(200);
            told = [s.user];
          } else if (created.length > 0) {
            const id = created[s.pick % created.length]!;
            const response = await inject(users[s.user]!, s.via, { method: 'POST', url: `/api/v1/notifications/${id}/${s.kind}` });
            expect([200, 404]).toContain(response.statusCode);
            if (response.statusCode === 200) told = [s.user];
          }
          // Served at once, by the instance that did not make the change too: nothing waits for LISTEN
          // (the consumer's commit is not an answer to anyone: its count follows its delivery, below).
          for (let i = 0; i < users.length && s.kind !== 'order'; i++) {
            const served = (await inject(users[i]!, s.via + 1, { url: '/api/v1/notifications/unread-count' })).json<Counts>();
            expect(served, `served to user ${i} by the other instance`).toEqual(await fresh(i));
          }
          for (const i of told) await pushesUntil(i, before[i]! + 1);
          for (const app of apps) await app.realtime.settled();
          for (let i = 0; i < users.length; i++) {
            const truth = await fresh(i);
            const served = (await inject(users[i]!, s.via, { url: '/api/v1/notifications/unread-count' })).json<Counts>();
            expect(served, `served to user ${i} by the instance that made the change`).toEqual(truth);
            expect(pushed[i]!.at(-1), `pushed to user ${i}`).toEqual(truth);
          }
        }
      }),
      { numRuns: 15 },
    );
    for (const socket of sockets) socket.disconnect();
  }, 120_000);
});
