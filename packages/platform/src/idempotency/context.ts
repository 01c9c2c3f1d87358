import { AsyncLocalStorage } from 'node:async_hooks';
import type { Transaction } from 'kysely';
import { AppError } from '../errors.ts';
import type { IdempotencyKeys, KeyOfCaller } from './keys.ts';

/** The key a request holds while its handler runs. */
export interface IdempotentAttempt extends KeyOfCaller {
  readonly attempt: string;
  readonly keys: IdempotencyKeys;
  /** Set once the response is on its way: later writes (background work the request started) are not its own. */
  finished: boolean;
}

/** Carries the request's key from the HTTP hook down to the write's transaction. */
export const idempotentAttempts = new AsyncLocalStorage<IdempotentAttempt>();

/**
 * Marks the current request's idempotency key committed, inside the write's own transaction, so
 * the key and the change commit together. Throws (rolling the write back) when a retry has taken
 * the key over: two attempts can never both commit. Without a keyed request it does nothing.
 * `appendEvents` calls it; call it yourself in a write that appends no events.
 *
 * @example
 * await db.transaction().execute(async (trx) => {
 *   await policies.insert(trx, input);
 *   await markIdempotentWrite(trx);
 * });
 */
export async function markIdempotentWrite<DB>(trx: Transaction<DB>): Promise<void> {
  const current = idempotentAttempts.getStore();
  if (!current || current.finished) return;
  if (!(await current.keys.markCommitted(trx, current))) {
    throw new AppError('IDEMPOTENCY_KEY_IN_USE', `A retry with Idempotency-Key ${current.key} took over from this attempt, which was presumed dead; this attempt wrote nothing`, {
      fields: [{ field: 'headers.idempotency-key', message: 'was taken over by a retry', value: current.key }],
    });
  }
}
