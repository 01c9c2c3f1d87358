import { Cron } from 'croner';
import { isCronExpression, type JobDefinition } from '@archipelago/registry';
import { ConfigError } from '../config.ts';

const DAILY = /^([01]\d|2[0-3]):([0-5]\d)$/;

/**
 * The schedule a job runs on in this process: its declared cron expression, or what its
 * `scheduleVariable` says (a cron expression, `HH:MM` daily in UTC, or `off`: undefined).
 * A malformed override is a ConfigError naming the variable.
 */
export function effectiveSchedule(job: JobDefinition, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const override = job.scheduleVariable ? env[job.scheduleVariable]?.trim() : undefined;
  if (!override) return job.schedule;
  if (override === 'off') return undefined;
  const daily = DAILY.exec(override);
  if (daily) return `${Number(daily[2])} ${Number(daily[1])} * * *`;
  if (isCronExpression(override)) return override;
  throw new ConfigError([{
    variable: job.scheduleVariable!,
    message: `must be a cron expression (UTC, e.g. "0 2 * * *"), HH:MM (daily, UTC) or off (got "${override}"); it schedules ${job.name}`,
  }]);
}

/**
 * The first time strictly after `after` that `schedule` (cron, UTC) names. A fixed offset
 * rather than `timezone: 'UTC'`: the same times without Intl.DateTimeFormat, whose ICU time-zone
 * data would cost every process with jobs ~5 MB of RSS.
 */
export function nextRunAfter(schedule: string, after: Date): Date | undefined {
  return new Cron(schedule, { utcOffset: 0 }).nextRun(after) ?? undefined;
}
