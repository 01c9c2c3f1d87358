import type { FastifyRequest } from 'fastify';
import type { EventMetadata } from '@archipelago/platform/events';
import { clientAddress } from '@archipelago/platform/internal-auth';
import type { ClientInfo } from '../sessions/auth.service.ts';

/**
 * The address and agent of whoever called: the gateway's X-Forwarded-For only on a request that
 * carries the gateway's service token, the socket's peer otherwise (loopback is no proof).
 */
export function clientOf(request: FastifyRequest): ClientInfo {
  const ip = clientAddress(request);
  const agent = request.headers['user-agent'];
  return { ip: ip.slice(0, 64), userAgent: typeof agent === 'string' ? agent : null };
}

/** Who and which request caused a change. */
export function metadataOf(request: FastifyRequest): EventMetadata {
  return { correlationId: request.id, ...(request.user ? { userId: request.user.id } : {}) };
}
