import type { Logger } from '@archipelago/platform';
import type { AuditLog } from './audit.repository.ts';

const DAY_MS = 86_400_000;

/** Purges audit entries past retention now and then once a day; returns a stop function. */
export function scheduleAuditPurge(audit: AuditLog, options: { retentionDays: number; now: () => number; logger: Logger | false }): () => void {
  const run = async () => {
    try {
      const purged = await audit.purgeBefore(new Date(options.now() - options.retentionDays * DAY_MS));
      if (purged > 0 && options.logger) options.logger.info({ purged }, 'auth audit log: entries past retention purged');
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
