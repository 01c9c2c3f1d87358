import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { Agent, type Dispatcher } from 'undici';

/** Larger answers are streamed to the client as they come; smaller ones are sent in one write. */
const BUFFERED_BYTES = 256 * 1024;

// Connection-specific fields of the upstream's answer (RFC 9110 §7.6.1): Node sets the client's own.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'http2-settings']);

/** One request to one upstream instance. */
export interface Exchange {
  /** `http://host:port` of the instance. */
  readonly origin: string;
  /** Path and query string, as the client sent them. */
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string | Buffer | undefined;
}

/**
 * What became of an exchange that produced no answer for the client: `error` with `answered`
 * false when the upstream sent nothing back (the request may be tried again, or elsewhere),
 * true when it failed in the middle of its answer. Once an answer is being sent, errors end it.
 */
export type Failure = (error: Error, answered: boolean) => void;

/**
 * Forwards requests to upstream instances over pooled keep-alive connections (undici), and
 * relays each answer through the Fastify reply (so its onSend hooks and the access log see it):
 * status and end-to-end headers, then the body, in one write when it is small (the usual JSON
 * answer), streamed with backpressure once it is over BUFFERED_BYTES.
 */
export function createProxy(options: { timeoutMs: number; connectTimeoutMs: number }): { forward(reply: FastifyReply, exchange: Exchange, failed: Failure): void; destroy(): Promise<void> } {
  const agent = new Agent({ headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs, connect: { timeout: options.connectTimeoutMs }, connections: 128, pipelining: 1 });
  return {
    forward(reply, exchange, failed) {
      const relay = new Relay(reply, failed);
      agent.dispatch({ origin: exchange.origin, path: exchange.path, method: exchange.method, headers: exchange.headers, body: exchange.body }, relay);
    },
    // Once the server is closed (its requests answered or cut), whatever is left is cut too.
    destroy: () => agent.destroy(),
  };
}

// One exchange's answer, on its way to the client.
class Relay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private statusCode = 0;
  private headers: Record<string, string | string[]> | undefined;
  private chunks: Buffer[] = [];
  private size = 0;
  private stream: Readable | undefined;
  private ended = false;
  private gone = false;
  // The answer or the failure has been handed on: nothing more to do but for a stream.
  private settled = false;

  constructor(
    private readonly reply: FastifyReply,
    private readonly failed: Failure,
  ) {
    // The client went away: stop the upstream's work on its answer (not once it is complete:
    // its connection serves other requests by then).
    reply.raw.once('close', () => {
      this.gone = true;
      if (!this.ended) this.controller?.abort(new Error('The client closed the connection'));
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.gone) controller.abort(new Error('The client closed the connection'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>): void {
    this.statusCode = statusCode;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.stream) {
      if (!this.stream.push(chunk)) controller.pause();
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > BUFFERED_BYTES) this.startStream(controller);
  }

  onResponseEnd(): void {
    this.ended = true;
    if (this.stream) return void this.stream.push(null);
    if (this.settled || this.gone || !this.answer()) return;
    this.settled = true;
    const body = this.size === 0 ? undefined : this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    void this.reply.send(body);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.ended = true;
    if (this.stream) return void this.stream.destroy(error);
    this.chunks = [];
    if (this.settled || this.gone) return;
    this.settled = true;
    this.failed(error, this.headers !== undefined);
  }

  // Status and headers onto the reply; false (and a failure) when the status is not one to relay.
  private answer(): boolean {
    try {
      void this.reply.code(this.statusCode);
    } catch (error) {
      this.settled = true;
      this.failed(error instanceof Error ? error : new Error(String(error)), true);
      return false;
    }
    const headers = this.headers!;
    const connection = headers.connection;
    const named = typeof connection === 'string' && !HOP_BY_HOP.has(connection) ? connection.toLowerCase().split(',').map((token) => token.trim()) : undefined;
    for (const name in headers) {
      if (HOP_BY_HOP.has(name) || named?.includes(name)) continue;
      void this.reply.header(name, headers[name]);
    }
    // A connection is reusable only once its request body has been read.
    if (!this.reply.request.raw.complete) void this.reply.header('connection', 'close');
    return true;
  }

  private startStream(controller: Dispatcher.DispatchController): void {
    if (!this.answer()) {
      this.ended = true;
      return controller.abort(new Error('The upstream answered with an invalid status'));
    }
    this.stream = new Readable({
      read: () => controller.resume(),
      destroy: (error, callback) => {
        if (!this.ended) controller.abort(error ?? new Error('The client closed the connection'));
        callback(error);
      },
    });
    for (const chunk of this.chunks) this.stream.push(chunk);
    this.chunks = [];
    this.settled = true;
    void this.reply.send(this.stream);
  }
}
