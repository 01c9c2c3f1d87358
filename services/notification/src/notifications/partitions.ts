import type { JobHandler } from '@archipelago/platform/jobs';
import type { NotificationRepository } from './notification.repository.ts';

const MONTHS_AHEAD = 3;

/** First day (YYYY-MM-DD, UTC) of the month `offset` months from `at`'s. */
export function monthStart(at: Date, offset = 0): string {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + offset, 1)).toISOString().slice(0, 10);
}

/** The partition upkeep jobs: months created ahead, and the default partition drained into its months. */
export function partitionJobs(repository: NotificationRepository, now: () => Date = () => new Date()): Record<'partitions.create-ahead' | 'partitions.drain-default', JobHandler> {
  return {
    'partitions.create-ahead': async () => {
      const created: string[] = [];
      for (let offset = 0; offset <= MONTHS_AHEAD; offset++) {
        const month = monthStart(now(), offset);
        if ((await repository.ensurePartition(month)) !== null) created.push(month);
      }
      return { created };
    },
    'partitions.drain-default': async () => {
      const moved: Record<string, number> = {};
      for (const month of await repository.monthsInDefault()) moved[month] = (await repository.ensurePartition(month)) ?? 0;
      return { moved };
    },
  };
}
