/** A time of day in UTC, `HH:MM`. */
const DAILY_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Milliseconds from `now` until the next `at` (`HH:MM`, UTC); a time equal to now is a day away. */
export function msUntilNext(at: string, now: Date): number {
  const match = DAILY_TIME.exec(at);
  if (!match) throw new Error(`"${at}" is not a time of day (HH:MM, UTC)`);
  const [, hours, minutes] = match;
  const next = new Date(now);
  next.setUTCHours(Number(hours), Number(minutes), 0, 0);
  if (next <= now) next.setUTCDate(next.getUTCDate() + 1);
  return next.getTime() - now.getTime();
}

/**
 * Runs `task` every day at `at` (UTC) until the returned function is called. The timer does not
 * keep the process alive; a failing run is reported to `onError` and the next one still happens.
 *
 * @example
 * const cancel = scheduleDaily('02:00', () => sync.reconcile(), (error) => logger.error(error));
 */
export function scheduleDaily(at: string, task: () => Promise<unknown>, onError: (error: unknown) => void): () => void {
  msUntilNext(at, new Date()); // rejects a malformed time now, not at the first run
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = () => {
    timer = setTimeout(() => {
      void task()
        .catch(onError)
        .finally(() => {
          if (!cancelled) arm();
        });
    }, msUntilNext(at, new Date()));
    timer.unref();
  };
  arm();
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}
