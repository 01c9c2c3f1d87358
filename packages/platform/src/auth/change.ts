import type { FastifyRequest } from 'fastify';
import type { EventMetadata } from '../events/envelope.ts';

/** Who and which request caused a change: for audit columns (`created_by`) and its events. */
export interface Change {
  /** The authenticated user (token subject), or null for an unauthenticated internal caller. */
  readonly userId: string | null;
  readonly metadata: EventMetadata;
}

/** The change a request makes, as services record it. */
export function changeOf(request: FastifyRequest): Change {
  const userId = request.user?.id ?? null;
  return { userId, metadata: { correlationId: request.id, ...(userId ? { userId } : {}) } };
}
