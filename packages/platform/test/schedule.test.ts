import { describe, expect, it } from 'vitest';
import { msUntilNext, scheduleDaily } from '../src/schedule.ts';

describe('daily schedule (UTC)', () => {
  const at = (iso: string) => new Date(iso);

  it('waits until the next occurrence, today or tomorrow', () => {
    expect(msUntilNext('02:00', at('2026-11-23T01:59:00Z'))).toBe(60_000);
    expect(msUntilNext('02:00', at('2026-11-23T02:00:00Z'))).toBe(24 * 3_600_000); // now is a day away
    expect(msUntilNext('02:00', at('2026-11-23T23:30:00Z'))).toBe(2.5 * 3_600_000);
    expect(msUntilNext('00:00', at('2026-12-31T23:59:30Z'))).toBe(30_000); // across the year
  });

  it('refuses a malformed time when scheduled, not at the first run', () => {
    expect(() => scheduleDaily('25:00', async () => undefined, () => undefined)).toThrow('"25:00" is not a time of day (HH:MM, UTC)');
    expect(() => msUntilNext('2:00', new Date())).toThrow('is not a time of day');
  });
});
