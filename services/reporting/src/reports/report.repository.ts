import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CompiledQuery, sql, type Kysely } from 'kysely';
import { AppError, serviceLayout } from '@archipelago/platform';

// Read from the source tree, compiled or not (like migrations): SQL files are not bundled.
const REPORTS_DIR = path.join(serviceLayout('reporting').root, 'reports');

/** A cross-service report: one SQL file in services/reporting/reports/, `$1` limit and `$2` offset. */
export interface ReportFile {
  readonly name: string;
  readonly description: string;
  readonly sql: string;
}

/** The report files, read once: the name is the file's, the description its first comment line. */
export function loadReports(dir = REPORTS_DIR): ReportFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((file) => {
      const text = readFileSync(path.join(dir, file), 'utf8');
      return { name: file.replace(/\.sql$/, ''), description: /^--\s*(.*)$/m.exec(text)?.[1] ?? '', sql: text };
    });
}

export interface SubscriptionRow {
  service: string;
  subscription: string;
  enabled: boolean;
  streaming: boolean;
  lag_bytes: string | null;
  lag_seconds: number | null;
  retained_bytes: string | null;
  wal_status: string | null;
  apply_errors: string;
  sync_errors: string;
  conflicts: string;
}

// Copies missing (reporting not provisioned yet, or a resync under way) and a report cut off by
// its role's statement_timeout are a 503, not a 500.
function unavailable(error: unknown): never {
  const code = (error as { code?: string }).code;
  if (code === '42P01' || code === '3F000') throw new AppError('UNAVAILABLE', 'The reporting copies are not provisioned yet; retry shortly', { cause: error });
  if (code === '57014') throw new AppError('UNAVAILABLE', 'The report ran longer than reporting allows (REPORTING_QUERY_TIMEOUT_MS); ask for a smaller page', { cause: error });
  throw error;
}

/** The only code of the reporting service that runs SQL. */
export function reportRepository(db: Kysely<unknown>) {
  return {
    async run(report: ReportFile, limit: number, offset: number): Promise<{ items: Record<string, unknown>[]; total: number }> {
      // $1 and $2 are bound parameters, as in any prepared statement: the file's text is sent as written.
      const { rows } = await db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(report.sql, [limit, offset])).catch(unavailable);
      const total = rows.length > 0 ? Number(rows[0]!.total) : 0;
      return { items: rows.map(({ total: _total, ...row }) => row), total };
    },

    // Seen from the subscriber: its state and stats; the slot's lag and retained WAL when the
    // source shares reporting's cluster (pg_replication_slots is cluster-wide), else null.
    async subscriptions(): Promise<SubscriptionRow[]> {
      const { rows } = await sql<SubscriptionRow>`
        SELECT s.subname AS subscription, s.subname AS service, s.subenabled AS enabled,
               EXISTS (SELECT 1 FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.pid IS NOT NULL AND w.relid IS NULL) AS streaming,
               pg_wal_lsn_diff(pg_current_wal_lsn(), r.confirmed_flush_lsn)::bigint AS lag_bytes,
               CASE WHEN r.confirmed_flush_lsn >= pg_current_wal_lsn() THEN 0
                    ELSE extract(epoch FROM now() - (SELECT max(w.latest_end_time) FROM pg_stat_subscription w WHERE w.subid = s.oid))::float8 END AS lag_seconds,
               pg_wal_lsn_diff(pg_current_wal_lsn(), r.restart_lsn)::bigint AS retained_bytes, r.wal_status,
               coalesce(st.apply_error_count, 0) AS apply_errors, coalesce(st.sync_error_count, 0) AS sync_errors,
               coalesce(st.confl_insert_exists + st.confl_update_origin_differs + st.confl_update_exists + st.confl_update_missing
                        + st.confl_delete_origin_differs + st.confl_delete_missing + st.confl_multiple_unique_conflicts, 0) AS conflicts
        FROM pg_subscription s
        LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid
        LEFT JOIN pg_replication_slots r ON r.slot_name = s.subslotname
        WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY s.subname`.execute(db);
      return rows;
    },
  };
}

export type ReportRepository = ReturnType<typeof reportRepository>;
