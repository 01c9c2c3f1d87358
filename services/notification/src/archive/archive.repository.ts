import { sql, type Kysely, type Transaction } from 'kysely';
import type { NotificationDatabase } from '../database.ts';

/** One archived notification: its row as stored, and every user's receipt of it. */
export interface ArchivedNotification {
  readonly id: string;
  readonly created_at: string;
  readonly [column: string]: unknown;
  readonly receipts: readonly Record<string, unknown>[];
}

type Touched = { user_id: string | null; department_code: string | null };

// Tells every instance, this one too (no instance id: see realtime's Change), at commit, whose
// unread counts moved: their cached badges are dropped and the new counts pushed.
const announceTouched = async (trx: Transaction<NotificationDatabase>, rows: readonly Touched[]) => {
  if (rows.length === 0) return;
  const users = [...new Set(rows.flatMap((row) => (row.user_id ? [row.user_id] : [])))];
  const departments = [...new Set(rows.flatMap((row) => (!row.user_id && row.department_code ? [row.department_code] : [])))];
  await sql`SELECT pg_notify('notification_changes', ${JSON.stringify({ users, departments, created: false })})`.execute(trx);
};

/** Rows and receipts leave and come back here, in short transactions (a long one stalls every feed on the cluster). */
export function archiveRepository(db: Kysely<NotificationDatabase>) {
  const groupOf = (department: string) => (department === '_none' ? sql`n.department_code IS NULL` : sql`n.department_code = ${department}`);
  return {
    /** The oldest (department, UTC day) with rows created before `cutoff`; `_none` for rows without a department. */
    async oldestGroup(cutoff: Date): Promise<{ department: string; day: string } | undefined> {
      const result = await sql<{ department: string; day: string }>`
        SELECT COALESCE(n.department_code, '_none') AS department, to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day
        FROM notifications n WHERE n.created_at < ${cutoff}
        GROUP BY 1, 2 ORDER BY 2, 1 LIMIT 1`.execute(db);
      return result.rows[0];
    },
    /** A group's rows (created before `cutoff`), each with its receipts, oldest first. */
    async rowsOf(department: string, day: string, cutoff: Date): Promise<ArchivedNotification[]> {
      const result = await sql<{ line: ArchivedNotification }>`
        SELECT to_jsonb(n) || jsonb_build_object(
                 'created_at', to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                 'receipts', COALESCE((SELECT jsonb_agg(to_jsonb(r) ORDER BY r.user_id) FROM notification_receipts r WHERE r.notification_id = n.id), '[]'::jsonb)) AS line
        FROM notifications n
        WHERE ${groupOf(department)} AND n.created_at >= ${day}::date AT TIME ZONE 'UTC' AND n.created_at < (${day}::date + 1) AT TIME ZONE 'UTC' AND n.created_at < ${cutoff}
        ORDER BY n.created_at, n.id`.execute(db);
      return result.rows.map((row) => row.line);
    },
    /** Deletes these notifications of one day and their receipts; returns how many rows went. */
    async remove(day: string, ids: readonly string[]): Promise<number> {
      return db.transaction().execute(async (trx) => {
        await sql`DELETE FROM notification_receipts WHERE notification_id = ANY(${ids}::uuid[])`.execute(trx);
        const result = await sql<Touched>`
          DELETE FROM notifications WHERE id = ANY(${ids}::uuid[])
            AND created_at >= ${day}::date AT TIME ZONE 'UTC' AND created_at < (${day}::date + 1) AT TIME ZONE 'UTC'
          RETURNING user_id, department_code`.execute(trx);
        await announceTouched(trx, result.rows);
        return result.rows.length;
      });
    },
    /** First days (YYYY-MM-DD) of the months that have a partition of their own. */
    async partitionMonths(): Promise<string[]> {
      const result = await sql<{ month: string }>`
        SELECT regexp_replace(c.relname, '^notifications_y(\\d{4})m(\\d{2})$', '\\1-\\2-01') AS month
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'notifications'::regclass AND c.relname ~ '^notifications_y\\d{4}m\\d{2}$' ORDER BY 1`.execute(db);
      return result.rows.map((row) => row.month);
    },
    /** Drops a month's partition if it holds no row; returns whether it went. */
    async dropPartition(month: string): Promise<boolean> {
      const result = await sql<{ dropped: boolean }>`SELECT notification_drop_partition(${month}::date) AS dropped`.execute(db);
      return result.rows[0]!.dropped;
    },
    /** Puts archived notifications back (those already there are left alone), in one short transaction; returns how many came back. */
    async restore(lines: readonly ArchivedNotification[]): Promise<number> {
      if (lines.length === 0) return 0;
      return db.transaction().execute(async (trx) => {
        const rows = lines.map(({ receipts: _receipts, ...row }) => row);
        const result = await sql<Touched>`
          INSERT INTO notifications SELECT * FROM jsonb_populate_recordset(NULL::notifications, ${JSON.stringify(rows)}::jsonb)
          ON CONFLICT DO NOTHING RETURNING user_id, department_code`.execute(trx);
        const receipts = lines.flatMap((line) => line.receipts);
        const readers = receipts.length === 0 ? [] : (await sql<Touched>`
          INSERT INTO notification_receipts SELECT * FROM jsonb_populate_recordset(NULL::notification_receipts, ${JSON.stringify(receipts)}::jsonb)
          ON CONFLICT DO NOTHING RETURNING user_id, NULL AS department_code`.execute(trx)).rows;
        await announceTouched(trx, [...result.rows, ...readers]);
        return result.rows.length;
      });
    },
  };
}

export type ArchiveRepository = ReturnType<typeof archiveRepository>;
