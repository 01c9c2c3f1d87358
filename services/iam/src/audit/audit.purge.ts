import type { Logger } from '@archipelago/platform';
import type { AuditLog } from './audit.repository.ts';

const DAY_MS = 86_400_000;

/** One purge run: entries past retention go; the job scheduler can call this directly. */
export async function purgeAuditLog(audit: AuditLog, options: { retentionDays: number; logger: Logger | false }): Promise<number> {
  const purged = await audit.purgeOlderThan(options.retentionDays);
  if (purged > 0 && options.logger) options.logger.info({ purged }, 'auth audit log: entries past retention purged');
  return purged;
}

/** Purges audit entries past retention now and then once a day; returns a stop function. */
export function scheduleAuditPurge(audit: AuditLog, options: { retentionDays: number; logger: Logger | false }): () => void {
  const run = async () => {
    try {
      await purgeAuditLog(audit, options);
    } catch (error) {
      if (options.logger) options.logger.warn({ err: error }, 'auth audit log purge failed; retrying tomorrow');
    }
  };
  const first = setTimeout(() => void run(), 10_000);
  const daily = setInterval(() => void run(), DAY_MS);
  first.unref();
  daily.unref();
  return () => {
    clearTimeout(first);
    clearInterval(daily);
  };
}
