export { markIdempotentWrite } from './context.ts';
export { IDEMPOTENCY_HEADER, REPLAYED_HEADER, registerIdempotency, type IdempotencyOptions } from './hook.ts';
export { createIdempotencyKeysTableV1, dropIdempotencyKeysTableV1, pruneIdempotencyKeys, pruneIdempotencyKeysJob } from './keys.ts';
