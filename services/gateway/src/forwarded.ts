import type { IncomingHttpHeaders } from 'node:http';
import { SERVICE_TOKEN_HEADER } from '@archipelago/platform/internal-auth';

/**
 * Headers a client may send but only the gateway may set: its service token, and every
 * "forwarded" header (the client's address, host, scheme as some proxy saw them). A client's
 * copies are dropped, so an upstream never takes a claim of the client's for the gateway's.
 */
export function isEdgeHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === SERVICE_TOKEN_HEADER || lower === 'forwarded' || lower.startsWith('x-forwarded-') || lower === 'x-real-ip' || lower === 'x-client-ip' || lower === 'true-client-ip';
}

/** The headers of a forwarded request: the client's, minus edge headers, plus the gateway's own. */
export function forwardedHeaders(
  headers: IncomingHttpHeaders,
  own: { requestId: string; traceparent: string; clientAddress: string; serviceToken: string },
): IncomingHttpHeaders {
  const kept = Object.fromEntries(Object.entries(headers).filter(([name]) => !isEdgeHeader(name)));
  return {
    ...kept,
    'x-request-id': own.requestId,
    traceparent: own.traceparent,
    'x-forwarded-for': own.clientAddress,
    [SERVICE_TOKEN_HEADER]: own.serviceToken,
  };
}
