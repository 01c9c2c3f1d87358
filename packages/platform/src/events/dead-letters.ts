import { sql, type Kysely } from 'kysely';
import Type from 'typebox';
import { AppError } from '../errors.ts';
import type { HttpServer } from '../http.ts';
import { OPERATOR_ONLY } from '../internal-auth/guard.ts';
import type { Consumer } from './consumer.ts';

export interface DeadLetter {
  readonly id: string;
  readonly consumer: string;
  readonly type: string;
  readonly position: string;
  readonly error: string;
  readonly attempts: number;
  readonly failedAt: string;
}

/**
 * Internal (not routed by the gateway) endpoints of a service's consumers, used by
 * `archipelago dlq`: their stats, and their dead letters to list, replay or discard (only with
 * `deadLetters`, the default: a service with broadcast consumers alone keeps none).
 */
export function registerConsumerRoutes(app: HttpServer, db: Kysely<unknown>, consumers: readonly Consumer[], options: { deadLetters?: boolean } = {}): void {
  const byName = new Map(consumers.map((consumer) => [consumer.name, consumer]));
  const Id = Type.Object({ id: Type.String({ format: 'uuid' }) });

  app.get('/internal/v1/consumers', { schema: { hide: true } }, async () => ({
    consumers: consumers.map((consumer) => ({ name: consumer.name, ...consumer.stats })),
  }));
  if (options.deadLetters === false) return;
  app.get(
    '/internal/v1/dead-letters',
    { config: OPERATOR_ONLY, schema: { hide: true, querystring: Type.Object({ consumer: Type.Optional(Type.String()), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }) } },
    async (request) => {
      const { consumer, limit } = request.query;
      const rows = await sql<DeadLetter>`
        SELECT id, consumer, type, position, error, attempts, failed_at AS "failedAt" FROM dead_letters
        WHERE ${consumer === undefined ? sql`true` : sql`consumer = ${consumer}`}
        ORDER BY failed_at LIMIT ${limit}`.execute(db);
      return { deadLetters: rows.rows };
    },
  );
  app.post('/internal/v1/dead-letters/:id/replay', { config: OPERATOR_ONLY, schema: { hide: true, params: Id } }, async (request) => {
    const { id } = request.params;
    const owner = await sql<{ consumer: string }>`SELECT consumer FROM dead_letters WHERE id = ${id}`.execute(db);
    const consumer = byName.get(owner.rows[0]?.consumer ?? '');
    if (!consumer) throw new AppError('NOT_FOUND', `No dead letter ${id} of a running consumer`);
    try {
      if (!(await consumer.replay(id))) throw new AppError('NOT_FOUND', `No dead letter ${id}`);
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError('CONFLICT', `Dead letter ${id} failed again and is kept: ${(error as Error).message}`, { cause: error });
    }
    return { replayed: id };
  });
  app.delete('/internal/v1/dead-letters/:id', { config: OPERATOR_ONLY, schema: { hide: true, params: Id } }, async (request, reply) => {
    const deleted = await sql`DELETE FROM dead_letters WHERE id = ${request.params.id}`.execute(db);
    if (deleted.numAffectedRows !== 1n) throw new AppError('NOT_FOUND', `No dead letter ${request.params.id}`);
    return reply.status(204).send();
  });
}
