import { performance } from 'node:perf_hooks';
import { build, type Histogram } from 'hdr-histogram-js';
import type { SecondPoint } from '../scenario.ts';

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

/** Microsecond resolution, 3 significant digits, up to one minute. */
function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

function microseconds(ms: number): number {
  return Math.max(1, Math.round(ms * 1000));
}

function summarize(histogram: Histogram): LatencySummary {
  const ms = (us: number): number => us / 1000;
  return {
    count: histogram.totalCount,
    p50Ms: ms(histogram.getValueAtPercentile(50)),
    p95Ms: ms(histogram.getValueAtPercentile(95)),
    p99Ms: ms(histogram.getValueAtPercentile(99)),
    maxMs: ms(histogram.maxValue),
    meanMs: ms(histogram.mean),
  };
}

/** Latencies in an HDR histogram for the whole run and one per second of it (for the chart). */
export class LatencyRecorder {
  private readonly total = newHistogram();
  private readonly perSecond = new Map<number, Histogram>();
  private readonly startedAt = performance.now();

  record(latencyMs: number): void {
    const value = microseconds(latencyMs);
    this.total.recordValue(value);
    const second = Math.floor((performance.now() - this.startedAt) / 1000);
    let histogram = this.perSecond.get(second);
    if (!histogram) this.perSecond.set(second, (histogram = newHistogram()));
    histogram.recordValue(value);
  }

  get count(): number {
    return this.total.totalCount;
  }

  summary(): LatencySummary {
    return summarize(this.total);
  }

  /** One point per second that saw responses, seconds counted from the recorder's creation. */
  series(): SecondPoint[] {
    return [...this.perSecond.entries()]
      .sort(([a], [b]) => a - b)
      .map(([second, histogram]) => {
        const summary = summarize(histogram);
        return { second, count: summary.count, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms };
      });
  }

  destroy(): void {
    this.total.destroy();
    for (const histogram of this.perSecond.values()) histogram.destroy();
  }
}
