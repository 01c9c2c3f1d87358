import type { FastifyRequest } from 'fastify';
import type { EventMetadata } from '@archipelago/platform/events';

// The one place that says who is acting; authentication (the IAM issue) fills it in here.
export function actorOf(_request: FastifyRequest): string | null {
  return null;
}

/** Who and which request caused a change, for audit columns and the events it records. */
export function changeOf(request: FastifyRequest): { readonly userId: string | null; readonly metadata: EventMetadata } {
  const userId = actorOf(request);
  return { userId, metadata: { correlationId: request.id, ...(userId ? { userId } : {}) } };
}

export type Change = ReturnType<typeof changeOf>;
