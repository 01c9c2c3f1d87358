import type { AuditLog } from './audit.repository.ts';

const DAY_MS = 86_400_000;

/** IAM's `audit.purge` job: deletes audit entries past retention; its result says how many went. */
export function auditPurgeJob(audit: AuditLog, options: { retentionDays: number; now: () => number }): () => Promise<{ purged: number }> {
  return async () => ({ purged: await audit.purgeBefore(new Date(options.now() - options.retentionDays * DAY_MS)) });
}
