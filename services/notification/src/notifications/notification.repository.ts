import { randomUUID } from 'node:crypto';
import { sql, type Insertable, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { NotificationDatabase, NotificationTable, Priority } from '../database.ts';

/** Who is looking: a user and the department they belong to now (from their session). */
export interface Viewer {
  readonly userId: string;
  readonly departmentCode: string | null;
}

export type NewNotification = Omit<Insertable<NotificationTable>, 'id' | 'metadata' | 'updated_at' | 'deleted_at'> & {
  readonly metadata?: Record<string, unknown>;
};

/** A notification as one viewer sees it: its own state, and the order it refers to (from the lookup). */
export interface NotificationView {
  id: string;
  department_code: string | null;
  user_id: string | null;
  notification_type: string;
  title: string;
  message: string;
  priority: Priority;
  reference_id: string | null;
  reference_type: string | null;
  reference_code: string | null;
  reference_status: string | null;
  metadata: Record<string, unknown>;
  created_at: string;
  created_by: string | null;
  read_at: string | null;
  seen_at: string | null;
  archived_at: string | null;
  actioned_at: string | null;
  /** Keyset position of this notification: (created_at, id). */
  cursor: string;
}

export interface FeedFilters {
  readonly type?: string;
  readonly priority?: Priority;
  readonly from?: string;
  readonly to?: string;
  readonly unread?: boolean;
  /** true: archived ones only; false (default): not archived. */
  readonly archived?: boolean;
}

export interface Position {
  readonly at: string;
  readonly id: string;
}

export type ReceiptField = 'read_at' | 'seen_at' | 'archived_at' | 'actioned_at';
export type UnreadCounts = { total: number } & Record<Priority, number>;

// One key for every insert: created_at is taken under it, so commit order is created_at order and a
// reader that saw (created_at, id) never later meets an older notification it had not seen.
const INSERT_LOCK = [0x4e4f5449, 1] as const; // ('NOTI', 1): the two-integer form never meets the migrator's one-bigint lock

const TIMESTAMP_US = (column: RawBuilder<unknown>) => sql<string>`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** `base64url("<created_at>|<id>")`, opaque to clients. */
export const encodeCursor = (position: Position): string => Buffer.from(`${position.at}|${position.id}`).toString('base64url');

/** The position in a cursor, or undefined when it is not one of ours. */
export function decodeCursor(cursor: string): Position | undefined {
  const [at, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (rest.length > 0 || !at || !id) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(at) || Number.isNaN(Date.parse(at))) return undefined;
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) return undefined;
  return { at, id };
}

/** Before every notification. */
export const NO_POSITION: Position = { at: '1970-01-01T00:00:00.000000Z', id: '00000000-0000-0000-0000-000000000000' };

const emptyCounts = (): UnreadCounts => ({ total: 0, CRITICAL: 0, HIGH: 0, NORMAL: 0, LOW: 0 });

/** The only code that reads or writes notifications, their receipts and their partitions. */
export function notificationRepository(db: Kysely<NotificationDatabase>) {
  const visibleTo = (viewer: Viewer) =>
    viewer.departmentCode === null
      ? sql`n.deleted_at IS NULL AND n.user_id = ${viewer.userId}::uuid`
      : sql`n.deleted_at IS NULL AND (n.user_id = ${viewer.userId}::uuid OR (n.user_id IS NULL AND n.department_code = ${viewer.departmentCode}))`;

  const selectViews = (viewer: Viewer, where: RawBuilder<unknown>, order: 'asc' | 'desc', limit: number, offset = 0) => {
    const direction = sql.raw(order === 'asc' ? 'ASC' : 'DESC');
    return sql<NotificationView>`
      SELECT n.id, n.department_code, n.user_id, n.notification_type, n.title, n.message, n.priority,
             n.reference_id, n.reference_type, o.order_code AS reference_code, o.status AS reference_status,
             n.metadata, ${TIMESTAMP_US(sql`n.created_at`)} AS created_at, n.created_by,
             ${TIMESTAMP_US(sql`r.read_at`)} AS read_at, ${TIMESTAMP_US(sql`r.seen_at`)} AS seen_at,
             ${TIMESTAMP_US(sql`r.archived_at`)} AS archived_at, ${TIMESTAMP_US(sql`r.actioned_at`)} AS actioned_at
      FROM notifications n
      LEFT JOIN notification_receipts r ON r.notification_id = n.id AND r.user_id = ${viewer.userId}::uuid
      LEFT JOIN orders_lookup o ON n.reference_type = 'ORDER' AND o.id = n.reference_id
      WHERE ${visibleTo(viewer)} AND ${where}
      ORDER BY n.created_at ${direction}, n.id ${direction}
      LIMIT ${limit} OFFSET ${offset}`.execute(db).then((result) => result.rows.map((row) => ({ ...row, cursor: encodeCursor({ at: row.created_at, id: row.id }) })));
  };

  const filtersOf = (filters: FeedFilters) => {
    const parts: RawBuilder<unknown>[] = [sql`true`];
    if (filters.type) parts.push(sql`n.notification_type = ${filters.type}`);
    if (filters.priority) parts.push(sql`n.priority = ${filters.priority}`);
    if (filters.from) parts.push(sql`n.created_at >= ${filters.from}::timestamptz`);
    if (filters.to) parts.push(sql`n.created_at < ${filters.to}::timestamptz`);
    if (filters.unread) parts.push(sql`r.read_at IS NULL`);
    parts.push(filters.archived ? sql`r.archived_at IS NOT NULL` : sql`r.archived_at IS NULL`);
    return sql.join(parts, sql` AND `);
  };

  /**
   * The same counts, and the newest notification the same statement saw (`at`; its snapshot's).
   * Inserts commit in created_at order (INSERT_LOCK), so the counts hold every notification up to
   * `at` and none after it: a notification delivered later and after `at` is not in them yet.
   */
  const unreadCountsAt = async (viewers: readonly Viewer[]): Promise<{ counts: Map<string, UnreadCounts>; at: Position }> => {
    const counts = new Map(viewers.map((viewer) => [viewer.userId, emptyCounts()]));
    const result = await sql<{ user_id: string | null; priority: Priority | null; unread: string | null; newest_at: string | null; newest_id: string | null }>`
      WITH newest AS (SELECT created_at, id FROM notifications ORDER BY created_at DESC, id DESC LIMIT 1),
      counted AS (
        SELECT v.user_id, c.priority, sum(c.unread) AS unread
        FROM unnest(${viewers.map((v) => v.userId)}::uuid[], ${viewers.map((v) => v.departmentCode)}::text[]) AS v (user_id, department_code)
        CROSS JOIN LATERAL (
          SELECT priority, unread FROM unread_counters WHERE user_id = v.user_id AND department_code IS NULL
          UNION ALL SELECT priority, unread FROM unread_counters WHERE user_id IS NULL AND department_code = v.department_code
          UNION ALL SELECT priority, unread FROM unread_counters WHERE user_id = v.user_id AND department_code = v.department_code
        ) AS c
        GROUP BY v.user_id, c.priority
      )
      SELECT counted.user_id, counted.priority, counted.unread, ${TIMESTAMP_US(sql`newest.created_at`)} AS newest_at, newest.id AS newest_id
      FROM (SELECT 1) AS one LEFT JOIN counted ON true LEFT JOIN newest ON true`.execute(db);
    for (const row of result.rows) {
      if (row.user_id === null || row.priority === null) continue;
      const entry = counts.get(row.user_id)!;
      entry[row.priority] = Number(row.unread);
      entry.total += Number(row.unread);
    }
    const newest = result.rows[0];
    return { counts, at: newest?.newest_at && newest.newest_id ? { at: newest.newest_at, id: newest.newest_id } : NO_POSITION };
  };

  return {
    /** Inserts notifications; created_at is the moment the insert lock was granted (see INSERT_LOCK). Answers in the order of `rows`. */
    async insert(trx: Transaction<NotificationDatabase>, rows: readonly NewNotification[]): Promise<NotificationView[]> {
      if (rows.length === 0) return [];
      await sql`SELECT pg_advisory_xact_lock(${INSERT_LOCK[0]}::int, ${INSERT_LOCK[1]}::int)`.execute(trx);
      // Ids made here, so each answer is matched to its row (RETURNING promises no order).
      const ids = rows.map(() => randomUUID());
      const inserted = await trx
        .insertInto('notifications')
        .values(rows.map((row, i) => ({ ...row, id: ids[i]!, metadata: JSON.stringify(row.metadata ?? {}), created_at: row.created_at ?? sql<Date>`clock_timestamp()` })))
        .returning(['id', 'department_code', 'user_id', 'notification_type', 'title', 'message', 'priority', 'reference_id', 'reference_type', 'metadata', 'created_by', TIMESTAMP_US(sql`created_at`).as('created_at')])
        .execute();
      const referenced = inserted.flatMap((row) => (row.reference_type === 'ORDER' && row.reference_id ? [row.reference_id] : []));
      const orders = new Map(
        referenced.length > 0 ? (await trx.selectFrom('orders_lookup').select(['id', 'order_code', 'status']).where('id', 'in', referenced).execute()).map((order) => [order.id, order]) : [],
      );
      const byId = new Map(inserted.map((row) => [row.id, row]));
      return ids.map((id) => {
        const row = byId.get(id)!;
        const order = row.reference_type === 'ORDER' && row.reference_id ? orders.get(row.reference_id) : undefined;
        return {
          ...row,
          reference_code: order?.order_code ?? (typeof row.metadata.order_code === 'string' ? row.metadata.order_code : null),
          reference_status: order?.status ?? (typeof row.metadata.status === 'string' ? row.metadata.status : null),
          read_at: null, seen_at: null, archived_at: null, actioned_at: null,
          cursor: encodeCursor({ at: row.created_at, id: row.id }),
        };
      });
    },

    /** A page of the viewer's feed, newest first: after a cursor (keyset) or at an offset. */
    async feed(viewer: Viewer, filters: FeedFilters, page: { limit: number; before?: Position; offset?: number }): Promise<NotificationView[]> {
      const where = page.before ? sql`${filtersOf(filters)} AND (n.created_at, n.id) < (${page.before.at}::timestamptz, ${page.before.id}::uuid)` : filtersOf(filters);
      return selectViews(viewer, where, 'desc', page.limit, page.offset ?? 0);
    },

    async count(viewer: Viewer, filters: FeedFilters): Promise<number> {
      const result = await sql<{ total: string }>`
        SELECT count(*) AS total FROM notifications n
        LEFT JOIN notification_receipts r ON r.notification_id = n.id AND r.user_id = ${viewer.userId}::uuid
        WHERE ${visibleTo(viewer)} AND ${filtersOf(filters)}`.execute(db);
      return Number(result.rows[0]!.total);
    },

    /** What the viewer has not seen after `after` up to `upTo`, oldest first (a reconnecting socket's catch-up). */
    async since(viewer: Viewer, after: Position, upTo: Position, limit: number): Promise<NotificationView[]> {
      return selectViews(
        viewer,
        sql`(n.created_at, n.id) > (${after.at}::timestamptz, ${after.id}::uuid) AND (n.created_at, n.id) <= (${upTo.at}::timestamptz, ${upTo.id}::uuid) AND r.archived_at IS NULL`,
        'asc',
        limit,
      );
    },

    /** Every notification after a position, oldest first, as anyone sees a new one (the live delivery). */
    async allSince(after: Position, limit: number): Promise<NotificationView[]> {
      const rows = await sql<NotificationView>`
        SELECT n.id, n.department_code, n.user_id, n.notification_type, n.title, n.message, n.priority,
               n.reference_id, n.reference_type, o.order_code AS reference_code, o.status AS reference_status,
               n.metadata, ${TIMESTAMP_US(sql`n.created_at`)} AS created_at, n.created_by,
               null AS read_at, null AS seen_at, null AS archived_at, null AS actioned_at
        FROM notifications n
        LEFT JOIN orders_lookup o ON n.reference_type = 'ORDER' AND o.id = n.reference_id
        WHERE n.deleted_at IS NULL AND (n.created_at, n.id) > (${after.at}::timestamptz, ${after.id}::uuid)
        ORDER BY n.created_at, n.id LIMIT ${limit}`.execute(db);
      return rows.rows.map((row) => ({ ...row, cursor: encodeCursor({ at: row.created_at, id: row.id }) }));
    },

    /** The newest position there is (where live delivery starts). */
    async newest(): Promise<Position> {
      const result = await sql<{ at: string; id: string }>`
        SELECT ${TIMESTAMP_US(sql`created_at`)} AS at, id FROM notifications ORDER BY created_at DESC, id DESC LIMIT 1`.execute(db);
      const row = result.rows[0];
      return row ? { at: row.at, id: row.id } : NO_POSITION;
    },

    /** Records events as applied, in the applying transaction; returns the ids not applied before. */
    async firstApplications(trx: Transaction<NotificationDatabase>, eventIds: readonly string[]): Promise<Set<string>> {
      if (eventIds.length === 0) return new Set();
      const result = await sql<{ event_id: string }>`
        INSERT INTO applied_events (event_id) SELECT unnest(${eventIds}::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id`.execute(trx);
      return new Set(result.rows.map((row) => row.event_id));
    },

    /** Forgets events applied before `before`; returns how many. */
    async pruneAppliedEvents(before: Date): Promise<number> {
      const result = await sql`DELETE FROM applied_events WHERE applied_at < ${before}`.execute(db);
      return Number(result.numAffectedRows ?? 0);
    },

    /** Tells every instance, at commit, what changed (LISTEN notification_changes). */
    async announce(trx: Transaction<NotificationDatabase>, payloads: readonly string[]): Promise<void> {
      await sql`SELECT pg_notify('notification_changes', payload) FROM unnest(${payloads}::text[]) AS payload`.execute(trx);
    },

    async findVisible(viewer: Viewer, id: string): Promise<NotificationView | undefined> {
      const [found] = await selectViews(viewer, sql`n.id = ${id}::uuid`, 'desc', 1);
      return found;
    },

    /** Sets one state of one notification for one user, keeping the first time it was set. */
    async mark(trx: Transaction<NotificationDatabase>, viewer: Viewer, id: string, fields: readonly ReceiptField[]): Promise<void> {
      const stateOf = (field: ReceiptField) => (fields.includes(field) ? sql<Date>`now()` : null);
      const receipt = { user_id: viewer.userId, notification_id: id, read_at: stateOf('read_at'), seen_at: stateOf('seen_at'), archived_at: stateOf('archived_at'), actioned_at: stateOf('actioned_at') };
      const keepFirst = (field: ReceiptField) => sql<Date>`COALESCE(notification_receipts.${sql.ref(field)}, now())`;
      const updates: Partial<Record<ReceiptField | 'updated_at', RawBuilder<Date>>> = { updated_at: sql<Date>`now()` };
      for (const field of fields) updates[field] = keepFirst(field);
      await trx
        .insertInto('notification_receipts')
        .values(receipt)
        .onConflict((oc) => oc.columns(['user_id', 'notification_id']).doUpdateSet(updates))
        .execute();
    },

    /** Marks every unread notification of the viewer (of one type, optionally) read; returns how many. */
    async readAll(trx: Transaction<NotificationDatabase>, viewer: Viewer, type?: string): Promise<number> {
      const result = await sql`
        INSERT INTO notification_receipts (user_id, notification_id, read_at)
        SELECT ${viewer.userId}::uuid, n.id, now() FROM notifications n
        LEFT JOIN notification_receipts r ON r.notification_id = n.id AND r.user_id = ${viewer.userId}::uuid
        WHERE ${visibleTo(viewer)} AND r.read_at IS NULL ${type ? sql`AND n.notification_type = ${type}` : sql``}
        ON CONFLICT (user_id, notification_id) DO UPDATE SET read_at = COALESCE(notification_receipts.read_at, now()), updated_at = now()`.execute(trx);
      return Number(result.numAffectedRows ?? 0);
    },

    /**
     * Unread (not read, not archived) notifications of each viewer, in total and per priority: three
     * counter rows per priority (their own, their department's broadcasts, the broadcasts they have
     * done with), kept by the tables' triggers in the transaction of every change (migration 20261202030000).
     */
    async unreadCounts(viewers: readonly Viewer[]): Promise<Map<string, UnreadCounts>> {
      if (viewers.length === 0) return new Map();
      return (await unreadCountsAt(viewers)).counts;
    },

    unreadCountsAt,

    /** Creates a month's partition (moving its rows out of the default); null when it existed. */
    async ensurePartition(month: string): Promise<number | null> {
      const result = await sql<{ moved: number | null }>`SELECT notification_ensure_partition(${month}::date) AS moved`.execute(db);
      return result.rows[0]!.moved;
    },

    /** First days (YYYY-MM-DD) of the months whose rows wait in the default partition. */
    async monthsInDefault(): Promise<string[]> {
      const result = await sql<{ month: string }>`
        SELECT DISTINCT to_char(date_trunc('month', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS month FROM notifications_default ORDER BY 1`.execute(db);
      return result.rows.map((row) => row.month);
    },

    /** Partitions of notifications and the rows each holds (for tests and the operator). */
    async partitions(): Promise<{ name: string; rows: number }[]> {
      const result = await sql<{ name: string }>`
        SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'notifications'::regclass ORDER BY 1`.execute(db);
      const partitions: { name: string; rows: number }[] = [];
      for (const { name } of result.rows) {
        const count = await sql<{ rows: string }>`SELECT count(*) AS rows FROM ${sql.table(name)}`.execute(db);
        partitions.push({ name, rows: Number(count.rows[0]!.rows) });
      }
      return partitions;
    },
  };
}

export type NotificationRepository = ReturnType<typeof notificationRepository>;
