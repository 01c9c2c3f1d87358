import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import type { SecondPoint } from '../scenario.ts';
import { LatencyRecorder, type LatencySummary } from './latency.ts';

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  readonly signal: AbortSignal;
  /** Called about once a second while the load runs (to sample memory). */
  readonly onTick?: () => void;
  /** Sent with every request (e.g. Authorization). */
  readonly headers?: Readonly<Record<string, string>>;
  /** POST with this JSON body instead of GET. */
  readonly jsonBody?: unknown;
}

export interface LoadResult {
  readonly latency: LatencySummary;
  readonly requestsPerSecond: number;
  readonly responses: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly wallSeconds: number;
  readonly series: SecondPoint[];
}

/**
 * GETs (or POSTs) `url` on a fixed number of keep-alive connections for a fixed time with autocannon.
 * Latencies are taken from each response (autocannon's own histogram keeps whole milliseconds,
 * too coarse for sub-millisecond comparisons) into an HDR histogram in microseconds.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const recorder = new LatencyRecorder();
  let non2xx = 0;
  const began = performance.now();
  try {
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon(
        {
          url: options.url,
          connections: options.connections,
          duration: options.durationS,
          timeout: 10,
          headers: { ...options.headers, ...(options.jsonBody === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(options.jsonBody === undefined ? {} : { method: 'POST' as const, body: JSON.stringify(options.jsonBody) }),
        },
        (error: unknown, result: autocannon.Result) => (error ? reject(error instanceof Error ? error : new Error('autocannon failed', { cause: error })) : resolve(result)),
      );
      instance.on('response', (_client: autocannon.Client, statusCode: number, _bytes: number, responseTimeMs: number) => {
        if (statusCode >= 200 && statusCode < 300) recorder.record(responseTimeMs);
        else non2xx++;
      });
      if (options.onTick) instance.on('tick', options.onTick);
      const stop = (): void => instance.stop();
      options.signal.addEventListener('abort', stop, { once: true });
      instance.once('done', () => options.signal.removeEventListener('abort', stop));
    });
    options.signal.throwIfAborted();
    // autocannon's duration covers the requests only; our wall clock also covers connecting.
    const wallSeconds = (performance.now() - began) / 1000;
    const loadSeconds = result.duration > 0 ? result.duration : wallSeconds;
    return {
      latency: recorder.summary(),
      requestsPerSecond: recorder.count / loadSeconds,
      responses: recorder.count,
      non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      wallSeconds,
      series: recorder.series(),
    };
  } finally {
    recorder.destroy();
  }
}
