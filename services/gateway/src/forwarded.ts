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

/**
 * The headers of a forwarded request: the client's that `keep` lets through (end to end), minus
 * edge headers, plus the gateway's own; one pass, as it runs on every request.
 */
export function forwardedHeaders(
  headers: IncomingHttpHeaders,
  own: { requestId: string; traceparent: string; clientAddress: string; serviceToken: string },
  keep: (name: string) => boolean = () => true,
): IncomingHttpHeaders {
  const forwarded: IncomingHttpHeaders = {};
  for (const name in headers) if (keep(name) && !isEdgeHeader(name)) forwarded[name] = headers[name];
  forwarded['x-request-id'] = own.requestId;
  forwarded.traceparent = own.traceparent;
  forwarded['x-forwarded-for'] = own.clientAddress;
  forwarded[SERVICE_TOKEN_HEADER] = own.serviceToken;
  return forwarded;
}
