import pg from 'pg';
import { isOk } from './timeline.ts';
import type { Ledger } from './generator.ts';
import type { Listener } from './sockets.ts';

/** How to reach each service's database as the superuser, and where its cluster keeps its data. */
export type Databases = ReadonlyMap<string, pg.ClientConfig & { readonly dataDir: string }>;

const configOf = (databases: Databases, service: string) => {
  const config = databases.get(service);
  if (!config) throw new Error(`no PostgreSQL of ${service}`);
  return config;
};

/** The checker's findings; `problems` lists each loss or duplicate effect (empty: passed). */
export interface Verdict {
  readonly lines: string[];
  readonly problems: string[];
}

interface Figures {
  lost: number;
  duplicateEffects: number;
  stale: number;
  wrongContent: number;
  phantom: number;
}

/** One query on a connection of its own. */
export async function query<T extends pg.QueryResultRow>(config: pg.ClientConfig, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

const LABEL_COLUMNS = ['label', 'display_name', 'abbreviation', 'display_order', 'is_active'] as const;
const ORDER_COLUMNS = ['order_code', 'status', 'department_code'] as const;

// A lookup table against its master: missing rows (lost), older versions (stale), other contents, rows without a master.
function compareLookup(master: readonly pg.QueryResultRow[], copy: readonly pg.QueryResultRow[], key: string, columns: readonly string[]): Figures {
  const copies = new Map(copy.map((row) => [String(row[key]), row]));
  const masters = new Set(master.map((row) => String(row[key])));
  const figures: Figures = { lost: 0, duplicateEffects: 0, stale: 0, wrongContent: 0, phantom: copy.filter((row) => !masters.has(String(row[key]))).length };
  for (const row of master) {
    const found = copies.get(String(row[key]));
    if (!found) figures.lost++;
    else if (Number(found.source_version) < Number(row.version)) figures.stale++;
    else if (columns.some((column) => String(found[column]) !== String(row[column]))) figures.wrongContent++;
  }
  return figures;
}

const EXPECTED: Record<string, [type: string, toCreator: boolean][]> = {
  PENDING: [['ORDER_PLACED', false]],
  PROCESSING: [['ORDER_PLACED', false]],
  COMPLETED: [['ORDER_PLACED', false], ['ORDER_COMPLETED', false], ['ORDER_COMPLETED', true]],
  CANCELLED: [['ORDER_PLACED', false], ['ORDER_CANCELLED', true]],
};

/**
 * Compares what the generator was told (the ledger) and what the masters hold with every copy:
 * lookup tables, the notifications each order must have made, badge counts and what each socket
 * received. Waits up to `settleMs` for the copies to catch up before judging.
 */
export async function check(databases: Databases, run: string, ledger: Ledger, listeners: readonly Listener[], badgeOf: (listener: Listener) => Promise<number>, settleMs: number): Promise<Verdict> {
  const began = Date.now();
  for (;;) {
    const verdict = await checkOnce(databases, run, ledger, listeners, badgeOf);
    if (verdict.problems.length === 0 || Date.now() - began > settleMs) {
      return { ...verdict, lines: [`Checked ${((Date.now() - began) / 1000).toFixed(1)} s after the load stopped (copies given up to ${settleMs / 1000} s to catch up):`, ...verdict.lines] };
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

async function checkOnce(clusters: Databases, run: string, ledger: Ledger, listeners: readonly Listener[], badgeOf: (listener: Listener) => Promise<number>): Promise<Verdict> {
  const databases = (service: string) => configOf(clusters, service);
  const lines: string[] = [];
  const problems: string[] = [];
  const problem = (condition: boolean, text: string) => condition && problems.push(text);

  // The ledger against the masters: every acknowledged write is there, once, as acknowledged.
  const labels = await query(databases('masterdata'), `SELECT code, ${LABEL_COLUMNS.join(', ')}, version FROM masterdata.labels WHERE code LIKE $1 AND deleted_at IS NULL`, [`F${run}%`]);
  const orders = await query(databases('core'), `SELECT id::text, item_name, ${ORDER_COLUMNS.join(', ')}, version, created_by::text FROM core.orders WHERE item_name LIKE $1`, [`fault-${run}-%`]);
  const labelByCode = new Map(labels.map((row) => [row.code as string, row]));
  const ordersByMarker = new Map<string, pg.QueryResultRow[]>();
  for (const row of orders) ordersByMarker.set(row.item_name as string, [...(ordersByMarker.get(row.item_name as string) ?? []), row]);
  const ackedLabels = ledger.labels.filter((l) => l.created !== undefined && isOk(l.created));
  const ackedOrders = ledger.orders.filter((o) => o.created !== undefined && isOk(o.created));
  const lostLabels = ackedLabels.filter((l) => !labelByCode.has(l.code)).length;
  const wrongLabels = ackedLabels.filter((l) => !l.uncertain && l.expected && labelByCode.has(l.code) && (labelByCode.get(l.code)!.label !== l.expected.label || Number(labelByCode.get(l.code)!.display_order) !== l.expected.display_order)).length;
  const lostOrders = ackedOrders.filter((o) => !ordersByMarker.has(o.marker)).length;
  const doubledOrders = [...ordersByMarker.values()].filter((rows) => rows.length > 1).length;
  const wrongStatus = ackedOrders.filter((o) => !o.uncertain && ordersByMarker.get(o.marker)?.[0] && ordersByMarker.get(o.marker)![0]!.status !== o.status).length;
  const refusedStored = [...ledger.labels.filter((l) => !l.uncertain && l.created !== undefined && !isOk(l.created) && labelByCode.has(l.code)), ...ledger.orders.filter((o) => !o.uncertain && o.created !== undefined && !isOk(o.created) && ordersByMarker.has(o.marker))].length;
  const uncertain = ledger.labels.filter((l) => l.uncertain).length + ledger.orders.filter((o) => o.uncertain).length;
  lines.push(`- ledger: ${ackedLabels.length} labels and ${ackedOrders.length} orders acknowledged, ${ledger.labels.reduce((n, l) => n + l.updates, 0)} label updates sent; ` +
    `lost ${lostLabels + lostOrders}, created twice ${doubledOrders}, not as acknowledged ${wrongLabels + wrongStatus}, refused but stored ${refusedStored}; ${uncertain} with an outcome still unknown after retries`);
  problem(lostLabels + lostOrders > 0, `${lostLabels + lostOrders} acknowledged creates lost`);
  problem(doubledOrders > 0, `${doubledOrders} orders created twice`);
  problem(wrongLabels + wrongStatus > 0, `${wrongLabels + wrongStatus} rows not as their last acknowledged change`);
  problem(refusedStored > 0, `${refusedStored} refused creates stored anyway`);

  // Every lookup table against its master.
  const labelCopies = await query(databases('core'), `SELECT code, ${LABEL_COLUMNS.join(', ')}, source_version FROM core.labels_lookup WHERE code LIKE $1`, [`F${run}%`]);
  const orderIds = orders.map((row) => row.id as string);
  const orderCopies = await query(databases('notification'), `SELECT id::text, ${ORDER_COLUMNS.join(', ')}, source_version FROM notification.orders_lookup WHERE id = ANY($1::uuid[])`, [orderIds]);
  for (const [name, figures] of [
    [`core.labels_lookup vs masterdata.labels (${labels.length} rows)`, compareLookup(labels, labelCopies, 'code', LABEL_COLUMNS)],
    [`notification.orders_lookup vs core.orders (${orders.length} rows)`, compareLookup(orders, orderCopies, 'id', ORDER_COLUMNS)],
  ] as const) {
    lines.push(`- ${name}: lost = ${figures.lost}, older than the master's last version = ${figures.stale}, other contents = ${figures.wrongContent}, without a master = ${figures.phantom}`);
    problem(figures.lost + figures.stale + figures.wrongContent + figures.phantom > 0, `${name} differs from its master`);
  }

  // Every order's notifications: exactly those its final status makes.
  const notifications = await query(databases('notification'), 'SELECT id::text, reference_id::text, notification_type, user_id::text, department_code FROM notification.notifications WHERE reference_id = ANY($1::uuid[]) AND deleted_at IS NULL', [orderIds]);
  const made = new Map<string, number>();
  for (const n of notifications) made.set(`${n.reference_id}|${n.notification_type}|${n.user_id ?? ''}`, (made.get(`${n.reference_id}|${n.notification_type}|${n.user_id ?? ''}`) ?? 0) + 1);
  let missing = 0;
  let duplicates = 0;
  let expectedTotal = 0;
  for (const order of orders) {
    const wanted = new Map<string, number>();
    for (const [type, toCreator] of EXPECTED[order.status as string]!) {
      if (toCreator && !order.created_by) continue;
      const key = `${order.id}|${type}|${toCreator ? order.created_by : ''}`;
      wanted.set(key, (wanted.get(key) ?? 0) + 1);
    }
    for (const [key, count] of wanted) {
      expectedTotal += count;
      missing += Math.max(0, count - (made.get(key) ?? 0));
      duplicates += Math.max(0, (made.get(key) ?? 0) - count);
    }
  }
  const unexpected = notifications.length - expectedTotal - duplicates + missing;
  lines.push(`- notifications: ${expectedTotal} expected from ${orders.length} orders' final status, ${notifications.length} stored; lost = ${missing}, duplicate effects = ${duplicates}, unexpected = ${unexpected}`);
  problem(missing > 0, `${missing} notifications lost`);
  problem(duplicates + unexpected > 0, `${duplicates + unexpected} duplicate or unexpected notifications`);

  // Every socket: everything meant for it, live or by catch-up; arrivals beyond the first are duplicate deliveries.
  const counts = await freshUnreadCounts(databases('notification'), listeners);
  for (const [index, listener] of listeners.entries()) {
    const meant = notifications.filter((n) => n.user_id === listener.userId || (n.user_id === null && listener.departmentCode !== null && n.department_code === listener.departmentCode));
    const notReceived = meant.filter((n) => !listener.received.has(n.id as string)).length;
    const twice = [...listener.received.values()].reduce((sum, times) => sum + times - 1, 0);
    const fresh = counts.get(listener.userId) ?? 0;
    const served = await badgeOf(listener);
    const pushed = listener.lastBadge()?.total;
    lines.push(`- socket ${index + 1} (${listener.departmentCode ? `department ${listener.departmentCode}` : 'creator'}): ${meant.length} meant for it, not received ${notReceived}, duplicate deliveries ${twice}; ` +
      `${listener.stats.connects} connections (${listener.stats.disconnects} drops, ${listener.stats.refusals} refused attempts); unread count: fresh ${fresh}, API ${served}, last pushed ${pushed ?? 'none'}`);
    problem(notReceived > 0, `socket ${index + 1} missed ${notReceived} notifications`);
    problem(served !== fresh, `socket ${index + 1}'s unread count ${served} is not the fresh ${fresh}`);
    problem(pushed !== fresh, `socket ${index + 1}'s last pushed badge ${pushed} is not the fresh ${fresh}`);
  }
  return { lines, problems };
}

// Unread notifications per user counted from the tables (not read, not archived, not deleted).
async function freshUnreadCounts(config: pg.ClientConfig, listeners: readonly Listener[]): Promise<Map<string, number>> {
  const rows = await query<{ user_id: string; unread: string }>(config, `
    SELECT v.user_id::text, count(n.id) AS unread
    FROM unnest($1::uuid[], $2::text[]) AS v (user_id, department_code)
    LEFT JOIN notification.notifications n ON n.deleted_at IS NULL AND (n.user_id = v.user_id OR (n.user_id IS NULL AND n.department_code = v.department_code))
      AND NOT EXISTS (SELECT 1 FROM notification.notification_receipts r WHERE r.user_id = v.user_id AND r.notification_id = n.id AND (r.read_at IS NOT NULL OR r.archived_at IS NOT NULL))
    GROUP BY v.user_id`, [listeners.map((l) => l.userId), listeners.map((l) => l.departmentCode)]);
  return new Map(rows.map((row) => [row.user_id, Number(row.unread)]));
}
