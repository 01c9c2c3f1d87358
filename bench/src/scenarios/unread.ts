import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { LatencyRecorder } from '../lib/latency.ts';
import { round } from '../lib/stats.ts';
import { BENCH_ADMIN, type RunningSystem } from '../lib/system.ts';
import { connect } from './baselines.ts';
import { type Headers, json, member, signIn, DEPARTMENT } from '../lib/socket-load.ts';

const TABLE_ROWS = 1_000_000;

/** Fills notifications with `rows` department broadcasts over 100 departments (1 % of them the bench's), this month. */
export async function fillTable(system: RunningSystem, rows: number): Promise<number> {
  const client = await connect(system, 'notification');
  try {
    const began = performance.now();
    await client.query(`
      INSERT INTO notification.notifications (department_code, notification_type, title, message, priority, created_at, created_by)
      SELECT CASE WHEN g % 100 = 0 THEN '${DEPARTMENT}' ELSE 'BENCH' || (g % 100) END, 'BENCH', 'Bench ' || g, 'filler',
             (ARRAY['CRITICAL', 'HIGH', 'NORMAL', 'LOW'])[1 + g % 4],
             date_trunc('month', now()) + (now() - date_trunc('month', now())) * (g::float8 / $1), 'bench'
      FROM generate_series(1, $1::int) AS g`, [rows]);
    // Vacuumed as a table at rest is: autovacuum of a million fresh rows would otherwise run during the measurements.
    await client.query('VACUUM ANALYZE notification.notifications');
    return performance.now() - began;
  } finally {
    await client.end();
  }
}

/**
 * The timed GETs: node:http on one kept-alive connection. undici's fetch cost this process about
 * twice the CPU per request (450 against 213 µs through the gateway), on the cores the system shares and
 * inside each measured time; the requests and the answers are the same.
 */
export function leanClient() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = <T>(url: string, headers: Headers, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      http
        .get(url, { agent, headers }, (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (response.statusCode === 200) resolve(JSON.parse(body) as T);
            else reject(new Error(`${what} answered ${response.statusCode} ${body}`));
          });
        })
        .on('error', reject);
    });
  return { get, close: () => agent.destroy() };
}
type LeanClient = ReturnType<typeof leanClient>;

/** GET unread-count `times` times in a row through the gateway; its latency. */
async function unreadCounts(client: LeanClient, gateway: string, headers: Headers, times: number) {
  const recorder = new LatencyRecorder();
  let total = 0;
  for (let i = 0; i < times; i++) {
    const began = performance.now();
    total = (await client.get<{ total: number }>(`${gateway}/api/v1/notifications/unread-count`, headers, 'unread-count')).total;
    recorder.record(performance.now() - began);
  }
  return { ...recorder.summary(), total };
}

/** Marks `times` of the department's broadcasts read, each followed by a timed GET unread-count, which must be one less. */
async function unreadAfterChanges(lean: LeanClient, system: RunningSystem, gateway: string, headers: Headers, times: number) {
  const client = await connect(system, 'notification');
  const ids = await client.query<{ id: string }>(`SELECT id FROM notification.notifications WHERE department_code = $1 AND user_id IS NULL ORDER BY created_at DESC LIMIT $2`, [DEPARTMENT, times]).finally(() => client.end());
  const recorder = new LatencyRecorder();
  let total = (await unreadCounts(lean, gateway, headers, 1)).total;
  for (const { id } of ids.rows) {
    await json(await fetch(`${gateway}/api/v1/notifications/${id}/read`, { method: 'POST', headers: { authorization: headers.authorization! } }), 'POST read');
    const began = performance.now();
    const counted = (await lean.get<{ total: number }>(`${gateway}/api/v1/notifications/unread-count`, headers, 'unread-count')).total;
    recorder.record(performance.now() - began);
    if (counted !== total - 1) throw new Error(`unread-count answered ${counted} after a read; it was ${total}`);
    total = counted;
  }
  return recorder.summary();
}

/**
 * Unread counts of a member of the bench's department with the table filled (a million rows; a
 * tenth with --quick): the first count, a run of counts in a row, and counts right after reads.
 * Figures are keyed under `prefix` (`notifications.unread`, `notifications-unread`).
 */
export async function measureUnread(context: ScenarioContext, system: RunningSystem, recipient: Headers, prefix: string) {
  const gateway = system.url('gateway');
  const rows = context.quick ? TABLE_ROWS / 10 : TABLE_ROWS;
  context.log(`filling notifications with ${rows.toLocaleString('en')} rows…`);
  const fillMs = await fillTable(system, rows);
  const lean = leanClient();
  try {
    const cold = await unreadCounts(lean, gateway, recipient, 1);
    const warm = await unreadCounts(lean, gateway, recipient, context.quick ? 200 : 1_000);
    context.log(`unread-count with the table filled: cold ${cold.p50Ms.toFixed(1)} ms, then p50 ${warm.p50Ms.toFixed(2)} ms, p99 ${warm.p99Ms.toFixed(2)} ms (total ${warm.total})`);
    const changed = await unreadAfterChanges(lean, system, gateway, recipient, context.quick ? 50 : 200);
    context.log(`unread-count right after a read: p50 ${changed.p50Ms.toFixed(2)} ms, p99 ${changed.p99Ms.toFixed(2)} ms`);
    const figures: Figure[] = [
      { key: `${prefix}.p99`, label: `unread-count through the gateway, ${rows.toLocaleString('en')} notifications in the table: p99`, value: round(warm.p99Ms, 2), unit: 'ms', goal: { comparison: '<=', value: 5 } },
      { key: `${prefix}.p50`, label: 'unread-count through the gateway: p50', value: round(warm.p50Ms, 2), unit: 'ms' },
      { key: `${prefix}.cold`, label: 'unread-count, first (uncached) count', value: round(cold.p50Ms, 1), unit: 'ms', note: `${warm.total} unread in the department` },
      { key: `${prefix}.changed.p99`, label: 'unread-count right after a read of a broadcast (one less each time): p99', value: round(changed.p99Ms, 2), unit: 'ms', note: `p50 ${round(changed.p50Ms, 2)} ms over ${changed.count}` },
    ];
    return { figures, details: { cold, warm, changed, fillMs }, note: `Unread count: ${warm.total} unread broadcasts for the member; the served count is the notification service's badge cache (exact, invalidated on every change); the first, uncached count is reported beside it.` };
  } finally {
    lean.close();
  }
}

/** The unread-count part of `notifications` alone, for working on it: a fresh member, the table filled, the same counts. */
export const notificationsUnread: Scenario = {
  name: 'notifications-unread',
  title: 'Notifications, unread-count only: through the gateway with the table filled',
  built: true,
  timeLimitS: { quick: 120, full: 300 },
  onlyWhenNamed: true,
  async run(context) {
    const system = await context.system();
    const gateway = system.url('gateway');
    const admin = await signIn(gateway, BENCH_ADMIN);
    const recipient = await member(gateway, admin.headers, 'bench-unread');
    const { figures, details, note } = await measureUnread(context, system, recipient.headers, 'notifications-unread');
    return { figures, details, notes: [note] };
  },
};
