import { describe, expect, it } from 'vitest';
import { LocalWindows } from '../src/rate-limit-store.ts';

describe('the rate-limit counts of one process', () => {
  it('counts a key within its window and starts a new window when it ends', () => {
    const windows = new LocalWindows();
    expect(windows.increment('ip:a', 1_000, 0)).toEqual({ current: 1, ttl: 1_000 });
    expect(windows.increment('ip:a', 1_000, 400)).toEqual({ current: 2, ttl: 600 });
    expect(windows.increment('ip:b', 1_000, 400)).toEqual({ current: 1, ttl: 1_000 });
    expect(windows.increment('ip:a', 1_000, 1_000)).toEqual({ current: 1, ttl: 1_000 });
  });

  it('stays bounded under a spray of addresses, dropping the window that ends first', () => {
    const windows = new LocalWindows();
    windows.increment('ip:first', 60_000, 0);
    for (let i = 0; i < 30_000; i++) windows.increment(`ip:spray-${i}`, 60_000, 10);
    expect(windows.size).toBe(10_000);
    expect(windows.increment('ip:spray-29999', 60_000, 11).current).toBe(2);
    expect(windows.increment('ip:first', 60_000, 11).current).toBe(1);
  });
});
