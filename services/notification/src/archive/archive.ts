import { gunzipSync, gzipSync } from 'node:zlib';
import type { JobHandler } from '@archipelago/platform/jobs';
import type { ArchiveRepository, ArchivedNotification } from './archive.repository.ts';
import { monthStart } from '../notifications/partitions.ts';
import { sha256, type ObjectStore } from './object-store.ts';

const DAY_MS = 24 * 60 * 60_000;
const BATCH = 500;

export interface ArchiveOptions {
  /** Notifications older than this many days are archived (default 30). */
  readonly retentionDays?: number;
  /** Archives older than this many days are deleted (default 365). */
  readonly keepArchivesDays?: number;
  /** Rows deleted per transaction (default 500): short transactions hold back no event feed for long. */
  readonly batchSize?: number;
  readonly now?: () => Date;
}

/** `archived-notifications/department/<dept>/<YYYY-MM-DD>.jsonl.gz`; `_none` holds the rows without a department. */
export const archiveKey = (department: string, day: string) => `archived-notifications/department/${department}/${day}.jsonl.gz`;

const parse = (body: Buffer): ArchivedNotification[] =>
  gunzipSync(body).toString('utf8').split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as ArchivedNotification);

/**
 * The archival job: per (department, day) older than the retention, the rows (with their
 * receipts) go to one gzip JSONL object — merged with what an earlier run stored there — which is
 * read back and checked (size, SHA-256, every id in it) before those rows are deleted, in short
 * batches. A crash between upload and delete (or between two delete batches) is repaired by the
 * next run: it stores the same union again and deletes what is now verifiably stored, so nothing
 * is lost or stored twice. A month's partition wholly older than the retention, once empty, is dropped.
 */
export function archiveJob(repository: ArchiveRepository, store: ObjectStore, options: ArchiveOptions = {}): JobHandler {
  return async ({ signal }) => {
    const now = (options.now ?? (() => new Date()))();
    const cutoff = new Date(now.getTime() - (options.retentionDays ?? 30) * DAY_MS);
    const objects: string[] = [];
    let archived = 0;
    for (let group = await repository.oldestGroup(cutoff); group && !signal.aborted; group = await repository.oldestGroup(cutoff)) {
      const key = archiveKey(group.department, group.day);
      const rows = await repository.rowsOf(group.department, group.day, cutoff);
      const earlier = await store.get(key);
      const byId = new Map((earlier ? parse(earlier) : []).map((line) => [line.id, line]));
      for (const row of rows) byId.set(row.id, row);
      const lines = [...byId.values()].sort((a, b) => (a.created_at === b.created_at ? a.id.localeCompare(b.id) : a.created_at.localeCompare(b.created_at)));
      const body = gzipSync(Buffer.from(lines.map((line) => JSON.stringify(line)).join('\n') + '\n'));
      await store.put(key, body);
      const stored = await store.head(key);
      const readBack = await store.get(key);
      const storedIds = new Set(readBack ? parse(readBack).map((line) => line.id) : []);
      if (!stored || stored.size !== body.length || stored.sha256 !== sha256(body) || !rows.every((row) => storedIds.has(row.id))) {
        throw new Error(`archive ${key} did not read back as written; its rows stay`);
      }
      const ids = rows.map((row) => row.id);
      const batch = options.batchSize ?? BATCH;
      for (let i = 0; i < ids.length; i += batch) archived += await repository.remove(group.day, ids.slice(i, i + batch));
      objects.push(key);
    }
    const droppedPartitions: string[] = [];
    const cutoffDay = cutoff.toISOString().slice(0, 10);
    for (const month of signal.aborted ? [] : await repository.partitionMonths()) {
      if (monthStart(new Date(`${month}T00:00:00Z`), 1) <= cutoffDay && (await repository.dropPartition(month))) droppedPartitions.push(month);
    }
    const oldest = new Date(now.getTime() - (options.keepArchivesDays ?? 365) * DAY_MS).toISOString().slice(0, 10);
    const expired = (await store.list('archived-notifications/')).filter((key) => (/(\d{4}-\d{2}-\d{2})\.jsonl\.gz$/.exec(key)?.[1] ?? '9999') < oldest);
    for (const key of expired) await store.delete(key);
    return { objects: objects.length, archived, droppedPartitions, expiredArchives: expired.length };
  };
}

/** Puts one department's day back from its archive; returns how many notifications came back. */
export async function restoreArchive(repository: ArchiveRepository, store: ObjectStore, department: string, day: string): Promise<{ restored: number; inArchive: number } | undefined> {
  const body = await store.get(archiveKey(department, day));
  if (!body) return undefined;
  const lines = parse(body);
  let restored = 0;
  for (let i = 0; i < lines.length; i += BATCH) restored += await repository.restore(lines.slice(i, i + BATCH));
  return { restored, inArchive: lines.length };
}
