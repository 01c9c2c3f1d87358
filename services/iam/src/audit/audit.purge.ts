import type { AuditLog } from './audit.repository.ts';

/** IAM's `audit.purge` job: deletes audit entries past retention (through the owner's purge function); its result says how many went. */
export function auditPurgeJob(audit: AuditLog, options: { retentionDays: number }): () => Promise<{ purged: number }> {
  return async () => ({ purged: await audit.purgeOlderThan(options.retentionDays) });
}
