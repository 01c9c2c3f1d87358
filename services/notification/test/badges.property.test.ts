import fc from 'fast-check';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import { notificationTestApp } from './notification-app.ts';

type Counts = { total: number; CRITICAL: number; HIGH: number; NORMAL: number; LOW: number };
type Step =
  | { kind: 'user'; user: number; priority: string }
  | { kind: 'broadcast'; department: string; priority: string }
  | { kind: 'read' | 'archive' | 'seen'; user: number; pick: number }
  | { kind: 'read-all'; user: number; type?: string };

const USERS: readonly { department: string }[] = [{ department: 'LAB' }, { department: 'LAB' }, { department: 'LAB' }, { department: 'RADIO' }, { department: 'RADIO' }];
const PRIORITY = fc.constantFrom('CRITICAL', 'HIGH', 'NORMAL', 'LOW');
const user = fc.integer({ min: 0, max: USERS.length - 1 });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('user' as const), user, priority: PRIORITY }),
  fc.record({ kind: fc.constant('broadcast' as const), department: fc.constantFrom('LAB', 'RADIO'), priority: PRIORITY }),
  fc.record({ kind: fc.constantFrom('read' as const, 'archive' as const, 'seen' as const), user, pick: fc.nat() }),
  fc.record({ kind: fc.constant('read-all' as const), user, type: fc.option(fc.constantFrom('A', 'B'), { nil: undefined }) }),
);

// Random interleavings of creates, broadcasts, reads, read-alls and archives: after every step, the
// count each user is served and the last one pushed to their socket equal a fresh count from the tables.
describe('unread badges', async () => {
  const { server, identity, as, db } = await notificationTestApp();
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  const admin = await as(identity.user({ roles: ['admin'], departmentCode: 'ADMIN' }));
  const users = USERS.map((u) => identity.user({ roles: ['staff'], departmentCode: u.department }));
  const clients = await Promise.all(users.map((u) => as(u)));
  const pushed = users.map(() => [] as Counts[]);
  const sockets: Socket[] = await Promise.all(
    users.map(async (u, i) => {
      const socket = connect(url, { path: '/socket.io', transports: ['websocket'], auth: { token: await identity.token(u) }, reconnection: false, forceNew: true });
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
  const fresh = async (i: number): Promise<Counts> => {
    const u = users[i]!;
    const rows = await sql<{ priority: keyof Counts; n: string }>`
      SELECT n.priority, count(*) AS n FROM notifications n
      WHERE n.deleted_at IS NULL AND (n.user_id = ${u.id}::uuid OR (n.user_id IS NULL AND n.department_code = ${u.departmentCode}))
        AND n.id NOT IN (SELECT notification_id FROM notification_receipts WHERE user_id = ${u.id}::uuid AND (read_at IS NOT NULL OR archived_at IS NOT NULL))
      GROUP BY n.priority`.execute(db);
    const counts: Counts = { total: 0, CRITICAL: 0, HIGH: 0, NORMAL: 0, LOW: 0 };
    for (const row of rows.rows) {
      counts[row.priority] = Number(row.n);
      counts.total += Number(row.n);
    }
    return counts;
  };
  const created: string[] = [];

  it('served and pushed counts equal a fresh count after every step', async () => {
    await Promise.all(users.map((_, i) => pushesUntil(i, 1)));
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        for (const s of steps) {
          const before = pushed.map((p) => p.length);
          let told: number[] = [];
          if (s.kind === 'user' || s.kind === 'broadcast') {
            const target = s.kind === 'user' ? { user_id: users[s.user]!.id } : { department_code: s.department };
            const response = await admin.inject({ method: 'POST', url: '/api/v1/notifications', payload: { notification_type: Math.random() < 0.5 ? 'A' : 'B', title: 't', message: 'm', priority: s.priority, ...target } });
            expect(response.statusCode).toBe(201);
            created.push(response.json<{ id: string }>().id);
            told = s.kind === 'user' ? [s.user] : users.flatMap((u, i) => (u.departmentCode === s.department ? [i] : []));
          } else if (s.kind === 'read-all') {
            expect((await clients[s.user]!.inject({ method: 'POST', url: `/api/v1/notifications/read-all${s.type ? `?type=${s.type}` : ''}` })).statusCode).toBe(200);
            told = [s.user];
          } else if (created.length > 0) {
            const id = created[s.pick % created.length]!;
            const response = await clients[s.user]!.inject({ method: 'POST', url: `/api/v1/notifications/${id}/${s.kind}` });
            expect([200, 404]).toContain(response.statusCode);
            if (response.statusCode === 200) told = [s.user];
          }
          for (const i of told) await pushesUntil(i, before[i]! + 1);
          await server.realtime.settled();
          for (let i = 0; i < users.length; i++) {
            const truth = await fresh(i);
            const served = (await clients[i]!.inject({ url: '/api/v1/notifications/unread-count' })).json<Counts>();
            expect(served, `served to user ${i}`).toEqual(truth);
            expect(pushed[i]!.at(-1), `pushed to user ${i}`).toEqual(truth);
          }
        }
      }),
      { numRuns: 25 },
    );
    for (const socket of sockets) socket.disconnect();
  }, 120_000);
});
