import { afterEach, describe, expect, it, vi } from 'vitest';
import { nextRunAfter } from '../src/jobs/schedule.ts';

describe('nextRunAfter', () => {
  afterEach(() => vi.restoreAllMocks());

  it('names UTC times, across daylight-saving changes elsewhere and month ends, without Intl.DateTimeFormat', () => {
    const formats = vi.spyOn(Intl, 'DateTimeFormat');
    expect(nextRunAfter('30 1 * * *', new Date('2026-03-08T01:30:00Z'))?.toISOString()).toBe('2026-03-09T01:30:00.000Z');
    expect(nextRunAfter('30 1 * * *', new Date('2026-03-29T00:59:59Z'))?.toISOString()).toBe('2026-03-29T01:30:00.000Z');
    expect(nextRunAfter('*/15 * * * *', new Date('2026-11-01T05:50:00Z'))?.toISOString()).toBe('2026-11-01T06:00:00.000Z');
    expect(nextRunAfter('0 2 1 * *', new Date('2026-12-31T23:00:00Z'))?.toISOString()).toBe('2027-01-01T02:00:00.000Z');
    expect(nextRunAfter('0 0 29 2 *', new Date('2026-03-01T00:00:00Z'))?.toISOString()).toBe('2028-02-29T00:00:00.000Z');
    // ICU's time-zone data is ~5 MB of every process's memory once touched; a UTC schedule has no need of it.
    expect(formats).not.toHaveBeenCalled();
  });
});
