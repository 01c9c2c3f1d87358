import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { AppError, toProblem, type HttpServer } from '@archipelago/platform';

// Connection-specific header fields (RFC 9110 §7.6.1, and the ones that RFC names as such in
// practice): they describe the client's connection to the gateway, not the gateway's to the service.
// `expect` is answered by the gateway itself (100 Continue), never forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', 'proxy-authorization', 'proxy-authenticate', 'http2-settings']);

/**
 * Whether a header of the client's is end to end, to be sent upstream: not a hop-by-hop field,
 * nor one the client's `Connection` names (RFC 9110 §7.6.1). `original` is what the client sent.
 */
export function endToEnd(original: IncomingHttpHeaders): (name: string) => boolean {
  const connection = original.connection;
  // Usually `keep-alive` or `close`, themselves hop-by-hop: no set to build.
  if (connection === undefined || HOP_BY_HOP.has(connection.toLowerCase())) return (name) => !HOP_BY_HOP.has(name);
  const named = new Set(connection.toLowerCase().split(',').map((token) => token.trim()).filter(Boolean));
  return (name) => !HOP_BY_HOP.has(name) && !named.has(name);
}

/**
 * `Expect: 100-continue` (curl sends it for bodies over 1 KB): the gateway answers 100 Continue
 * itself, or, when the declared body is over its limit, a 413 problem at once so that the client
 * does not send it. Any other expectation is a 417 (RFC 9110 §10.1.1).
 */
export function answerExpectations(app: HttpServer, bodyLimit: number): void {
  const refuse = (response: ServerResponse, problem: AppError) => {
    const body = JSON.stringify(toProblem(problem));
    response.writeHead(problem.status, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    response.end(body);
  };
  app.server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    if (Number(request.headers['content-length'] ?? 0) > bodyLimit) {
      refuse(response, new AppError('PAYLOAD_TOO_LARGE', `The body is larger than ${bodyLimit} bytes`));
      return;
    }
    response.writeContinue();
    app.server.emit('request', request, response);
  });
  app.server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    refuse(response, new AppError('EXPECTATION_FAILED', 'Only "Expect: 100-continue" is supported', { fields: [{ field: 'headers.expect', message: 'must be 100-continue' }] }));
  });
}
