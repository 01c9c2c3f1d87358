import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '@archipelago/platform';
import type { Auth, AuthUser } from '@archipelago/platform/auth';
import { clientAddress } from '@archipelago/platform/internal-auth';
import type { ChangeMetadata } from '../audit/audit.repository.ts';
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

/** Who, through which request and from where caused a change. */
export function metadataOf(request: FastifyRequest): ChangeMetadata {
  return { correlationId: request.id, ip: clientOf(request).ip, ...(request.user ? { userId: request.user.id } : {}) };
}

/**
 * Self-service account actions (own password and email, sessions, API tokens) need the person
 * signed in: an API token that could do them would be a full login of its owner.
 */
export function refuseApiToken(user: AuthUser, action: string): void {
  if (user.via.kind === 'api-token') throw new AppError('FORBIDDEN', `${action} needs a user's own access token (sign in); API tokens cannot do it`);
}

/** preHandler: a signed-in user (401 otherwise), not an API token (403). */
export function requirePerson(auth: Auth, action: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await auth.requireUser(request, reply);
    refuseApiToken(auth.userOf(request), action);
  };
}
