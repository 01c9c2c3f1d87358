import { randomBytes } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

// Random ids from a pooled buffer: one randomBytes call per 512 span ids instead of one per request.
let pool = Buffer.alloc(0);
let offset = 0;
function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  offset += bytes;
  return pool.toString('hex', offset - bytes, offset);
}

/**
 * The W3C `traceparent` to send upstream: the caller's trace continues with the gateway as a new
 * span; without a valid one, a new trace starts.
 */
export function nextTraceparent(incoming: string | string[] | undefined): string {
  const match = typeof incoming === 'string' ? TRACEPARENT.exec(incoming) : null;
  const traceId = match && !/^0+$/.test(match[1]!) ? match[1]! : randomHex(16);
  return `00-${traceId}-${randomHex(8)}-${match?.[3] ?? '01'}`;
}
