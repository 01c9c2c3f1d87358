import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Kysely } from 'kysely';
import Type from 'typebox';
import type { AuthUser } from '../auth/types.ts';
import { AppError } from '../errors.ts';
import type { HttpServer } from '../http.ts';
import { idempotentAttempts, type IdempotentAttempt } from './context.ts';
import { idempotencyKeys, type KeyOfCaller } from './keys.ts';

export interface IdempotencyOptions {
  /** The service's own database, holding `idempotency_keys` (created by its migration). */
  readonly db: Kysely<unknown>;
  /** How long a key is kept (default 24 h). */
  readonly retentionMs?: number;
  /** After how long a key still in progress is presumed abandoned (its process died), so a retry may take it over (default 30 s). */
  readonly staleAfterMs?: number;
}

export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Set on a replayed response (Stripe's name). */
export const REPLAYED_HEADER = 'idempotent-replayed';
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const IdempotencyHeaders = Type.Object({
  [IDEMPOTENCY_HEADER]: Type.Optional(
    Type.String({ description: 'Retrying with the same key replays the first response instead of writing again (kept 24 h, per caller); another request under the key is a 422, a duplicate in flight a 409.' }),
  ),
});
const KEY = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

// Members that hold secrets (a new user's password) are left out of the fingerprint: a fast hash
// of them kept for a day would be easier to guess than the password's own (argon2id) hash.
const SECRET_MEMBER = /(password|secret|token)$/i;

// Same members in any order are the same request.
const canonical = (value: unknown): string =>
  JSON.stringify(value, (key, v: unknown) => {
    if (SECRET_MEMBER.test(key)) return '(secret)';
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v;
  }) ?? '';

const headerProblem = (message: string, value?: unknown) =>
  new AppError('VALIDATION_FAILED', `Invalid Idempotency-Key header: ${message}`, { fields: [{ field: `headers.${IDEMPOTENCY_HEADER}`, message, value }] });

// The draft sends the key as a structured-field string ("…"); a bare token is accepted too.
function keyOf(header: string | string[]): string {
  if (Array.isArray(header)) throw headerProblem('must be sent once');
  const key = /^"(.*)"$/.exec(header)?.[1] ?? header;
  if (!KEY.test(key)) throw headerProblem('must be 1 to 255 printable ASCII characters', header);
  return key;
}

// Keys are the caller's own: a user's (whatever session), or one API token's.
function principalOf(user: AuthUser): string {
  return user.via.kind === 'api-token' ? `api-token:${user.via.tokenId}` : `user:${user.id}`;
}

const inUse = (key: string, message: string, reason: string) =>
  new AppError('IDEMPOTENCY_KEY_IN_USE', message, { extensions: { reason }, fields: [{ field: `headers.${IDEMPOTENCY_HEADER}`, message: reason, value: key }] });

/**
 * `Idempotency-Key` on every write under `/api/` (POST, PUT, PATCH, DELETE) of an authenticated
 * caller, with the IETF httpapi draft's and Stripe's semantics: the same key and request replay
 * the first response (`Idempotent-Replayed: true`); the same key with another method, path or
 * body is a 422; a duplicate while the first is in flight is a 409; a 5xx frees the key for a
 * retry. Keys live in the service's own database and are marked committed in the write's own
 * transaction (`markIdempotentWrite`, called by `appendEvents`). `createHttpServer` calls this
 * when given `idempotency`; it must run before routes are registered.
 */
export function registerIdempotency(app: HttpServer, options: IdempotencyOptions): void {
  const keys = idempotencyKeys(options.db);
  const retentionMs = options.retentionMs ?? 24 * 60 * 60 * 1000;
  const staleAfterMs = options.staleAfterMs ?? 30_000;
  const attempts = new WeakMap<FastifyRequest, IdempotentAttempt>();

  // Claims the key, or answers for it: undefined when the reply was sent (a replay).
  const begin = async (request: FastifyRequest, reply: FastifyReply, caller: KeyOfCaller): Promise<IdempotentAttempt | undefined> => {
    const fingerprint = createHash('sha256').update(`${request.method} ${request.url}\n${canonical(request.body)}`).digest('hex');
    const attempt = randomUUID();
    const mine = (): IdempotentAttempt => ({ ...caller, attempt, keys, finished: false });
    for (let round = 0; round < 3; round++) {
      if (await keys.claim({ ...caller, fingerprint, attempt, retentionMs })) return mine();
      const found = await keys.find(caller, staleAfterMs);
      if (!found) continue; // freed or expired meanwhile: claim again
      if (found.fingerprint !== fingerprint) {
        throw new AppError('IDEMPOTENCY_KEY_REUSED', `Idempotency-Key ${caller.key} was used for another request (method, path or body differ); use a new key for a new request`, {
          fields: [{ field: `headers.${IDEMPOTENCY_HEADER}`, message: 'was used for another request', value: caller.key }],
        });
      }
      if (found.state === 'completed') {
        if (!found.response_kept) throw inUse(caller.key, `The request with Idempotency-Key ${caller.key} completed (${found.response_status ?? '?'}); its response was not kept (marked no-store, or not text), so it cannot be replayed`, 'completed, response not kept');
        await reply
          .status(found.response_status ?? 200)
          .header(REPLAYED_HEADER, 'true')
          .header('content-type', found.response_type ?? 'application/json; charset=utf-8')
          .send(found.response_body ?? '');
        return undefined;
      }
      if (found.committed && found.stale) {
        throw inUse(caller.key, `The request with Idempotency-Key ${caller.key} committed its write but its response was lost; nothing is written again: read the resource to see the outcome`, 'committed, response lost');
      }
      if (found.committed || !found.stale) {
        reply.header('retry-after', '1');
        throw inUse(caller.key, `A request with Idempotency-Key ${caller.key} is still in progress; retry later`, 'in progress');
      }
      if (await keys.takeOver({ ...caller, from: found.attempt, to: attempt, staleAfterMs })) return mine();
    }
    reply.header('retry-after', '1');
    throw inUse(caller.key, `A request with Idempotency-Key ${caller.key} is still in progress; retry later`, 'in progress');
  };

  // Callback style on purpose: the handler runs inside `idempotentAttempts.run`, so its writes see the key.
  const claim = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const header = request.headers[IDEMPOTENCY_HEADER];
    const user = (request as { user?: AuthUser }).user;
    if (header === undefined || !user) return done(); // anonymous routes (sign-in, reset) keep no keys: their answers hold secrets
    let key: string;
    try {
      // Node joins repeated header lines with ", " (a valid key): count the lines themselves.
      if (request.raw.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === IDEMPOTENCY_HEADER).length > 1) throw headerProblem('must be sent once');
      key = keyOf(header);
    } catch (error) {
      return done(error as Error);
    }
    begin(request, reply, { principal: principalOf(user), key }).then(
      (attempt) => {
        if (!attempt) return;
        attempts.set(request, attempt);
        idempotentAttempts.run(attempt, () => done());
      },
      (error: unknown) => done(error as Error),
    );
  };

  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!route.url.startsWith('/api/') || !methods.some((method) => WRITES.has(method))) return;
    const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    route.preHandler = [...existing, claim]; // last: after authentication, so the caller is known
    // Documented in the OpenAPI document (clients see it); the hook itself checks the value.
    if (route.schema?.headers === undefined) route.schema = { ...route.schema, headers: IdempotencyHeaders };
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const attempt = attempts.get(request);
    if (!attempt || attempt.finished) return payload;
    attempt.finished = true;
    // A 5xx frees the key; anything else keeps its response (a response marked no-store, which
    // holds a secret, is not kept; neither is a stream).
    const noStore = /\bno-store\b/i.test(String(reply.getHeader('cache-control') ?? ''));
    const text = payload === null || payload === undefined ? '' : typeof payload === 'string' ? payload : undefined;
    const type = reply.getHeader('content-type');
    const record =
      reply.statusCode >= 500
        ? () => keys.release(attempt)
        : () => keys.complete({ ...attempt, status: reply.statusCode, type: typeof type === 'string' ? type : null, body: noStore || text === undefined ? null : text });
    try {
      await record();
    } catch (error) {
      // The database did not answer now (a terminated backend, a restart): until the key's row
      // learns the outcome a retry is a 409, so it is tried again in the background instead of
      // leaving the key to free itself once stale (30 s of 409s for every caller who retries).
      request.log.warn({ err: error, idempotencyKey: attempt.key }, 'could not record the outcome of an idempotent request; trying again in the background');
      retryInBackground(record, staleAfterMs, (last) =>
        request.log.warn({ err: last, idempotencyKey: attempt.key }, 'gave up recording the outcome of an idempotent request; its key frees itself once stale'),
      );
    }
    return payload;
  });
}

/** Runs `write` again, 100 ms after the failure and doubling to 2 s, until it succeeds or `forMs` have passed. */
function retryInBackground(write: () => Promise<void>, forMs: number, giveUp: (error: unknown) => void): void {
  const deadline = Date.now() + forMs;
  const retry = (delayMs: number) => {
    setTimeout(() => {
      write().catch((error: unknown) => (Date.now() + delayMs < deadline ? retry(Math.min(delayMs * 2, 2_000)) : giveUp(error)));
    }, delayMs).unref();
  };
  retry(100);
}
