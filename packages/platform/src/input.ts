import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import { Ajv, type Options as AjvOptions } from 'ajv';
import formats from 'ajv-formats';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaCompiler, HookHandlerDoneFunction } from 'fastify';
import { AppError, toProblem, type FieldProblem } from './errors.ts';

// Hostile or merely odd input must be refused at the edge of every service, as a 400 naming the
// field, before it reaches PostgreSQL (which rejects NUL bytes, year 0, numbers past bigint and
// answers with an error the handler did not expect). This file holds those checks; http.ts wires them.

/** Deepest JSON nesting a request body may have; no route's schema comes close. */
export const MAX_JSON_DEPTH = 32;
/** Longest request target (path and query) a service accepts; longer is a 414. */
export const MAX_URL_LENGTH = 8 * 1024;

const common: AjvOptions = { useDefaults: true, removeAdditional: false, allErrors: true, addUsedSchema: false, strictNumbers: true };

/**
 * Validators for request parts. Bodies are JSON and must have the types their schema says (no
 * `"1"` for 1, `true` for 1, `null` for `""`); params, query strings and headers arrive as text,
 * so they are coerced. Both refuse year 0 in dates, uuids in other spellings than PostgreSQL's,
 * and numbers outside what JavaScript holds exactly (unless the schema sets its own bounds).
 */
export function requestValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const body = withFormats(new Ajv({ ...common, coerceTypes: false }));
  const text = withFormats(new Ajv({ ...common, coerceTypes: 'array' }));
  return ({ schema, httpPart }) => {
    if (httpPart === 'body') return body.compile(bounded(schema) as object);
    const validate = text.compile(bounded(schema) as object);
    const check = (data: unknown) => {
      // ajv coerces whatever Number() reads ("0x10", "1e2", " 7"); in a URL a number is written in decimals.
      const spelled = nonDecimalPath(schema, data);
      if (spelled !== undefined) {
        check.errors = [{ instancePath: spelled, schemaPath: '#', keyword: 'type', params: {}, message: 'must be a number written in decimals' }];
        return false;
      }
      const valid = validate(data);
      // Coerced from "1e400" or "Infinity", a number is infinite, and ajv then skips its bounds.
      const infinite = valid ? infinitePath(data, '') : undefined;
      check.errors = infinite === undefined ? validate.errors : [{ instancePath: infinite, schemaPath: '#', keyword: 'type', params: {}, message: 'must be a finite number' }];
      return valid && infinite === undefined;
    };
    check.errors = null as typeof validate.errors;
    return check;
  };
}

const DECIMAL = /^-?\d+(\.\d+)?$/;
const isNumeric = (schema: unknown) => {
  const type = (schema as { type?: unknown } | undefined)?.type;
  return type === 'integer' || type === 'number';
};

// The first property of a flat text part (params, query string, headers) whose schema is a number,
// or an array of numbers, given in text that is not a plain decimal.
function nonDecimalPath(schema: unknown, data: unknown): string | undefined {
  const properties = (schema as { properties?: Record<string, { type?: unknown; items?: unknown }> } | undefined)?.properties;
  if (!properties || data === null || typeof data !== 'object') return undefined;
  for (const [key, property] of Object.entries(properties)) {
    const value = (data as Record<string, unknown>)[key];
    const texts = (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
    const numeric = isNumeric(property) || (property.type === 'array' && isNumeric(property.items));
    if (numeric && texts.some((text) => !DECIMAL.test(text))) return `/${key}`;
  }
  return undefined;
}

function infinitePath(data: unknown, path: string): string | undefined {
  if (typeof data === 'number') return Number.isFinite(data) ? undefined : path;
  if (data === null || typeof data !== 'object') return undefined;
  for (const [key, value] of Object.entries(data)) {
    const found = infinitePath(value, `${path}/${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

function withFormats(ajv: Ajv): Ajv {
  formats.default(ajv);
  const date = fullFormats.date as { validate: (value: string) => boolean };
  const dateTime = fullFormats['date-time'] as { validate: (value: string) => boolean };
  // RFC 3339 allows year 0000; PostgreSQL has no year 0 and fails the statement.
  ajv.addFormat('date', { type: 'string', validate: (value: string) => date.validate(value) && !value.startsWith('0000') });
  ajv.addFormat('date-time', { type: 'string', validate: (value: string) => dateTime.validate(value) && !value.startsWith('0000') });
  // ajv also takes `urn:uuid:…`, which PostgreSQL's uuid type does not.
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  return ajv;
}

// A copy of the schema in which every number without bounds gets JavaScript's exact range.
function bounded(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(bounded);
  if (schema === null || typeof schema !== 'object') return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    copy[key] = key === 'const' || key === 'enum' || key === 'default' || key === 'examples' ? value : bounded(value);
  }
  if (copy.type === 'integer' || copy.type === 'number') {
    if (copy.maximum === undefined && copy.exclusiveMaximum === undefined) copy.maximum = Number.MAX_SAFE_INTEGER;
    if (copy.minimum === undefined && copy.exclusiveMinimum === undefined) copy.minimum = -Number.MAX_SAFE_INTEGER;
  }
  return copy;
}

/** The JSON body parser: Fastify's own (prototype poisoning refused), after a nesting-depth check. */
export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, text, done) => {
    const body = typeof text === 'string' ? text : text.toString('utf8');
    if (nestingDepth(body) > MAX_JSON_DEPTH) {
      done(new AppError('BAD_REQUEST', `The body nests deeper than ${MAX_JSON_DEPTH} levels`, { fields: [{ field: 'body', message: `must not nest deeper than ${MAX_JSON_DEPTH} levels` }] }));
      return;
    }
    void parse(request, body, (error, value) => {
      if (error) done(new AppError('BAD_REQUEST', `The body is not valid JSON: ${error.message}`, { fields: [{ field: 'body', message: error.message }] }));
      else done(null, value);
    });
  });
}

// Deepest nesting of objects and arrays in a JSON text, without parsing it (strings skipped).
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/**
 * Refuses NUL bytes anywhere in a request's params, query or body (keys included): PostgreSQL
 * cannot store them in text, and a route should not have to know that.
 */
export function refuseNulBytes(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const fields: FieldProblem[] = [];
  findNul(request.params, 'params', fields);
  findNul(request.query, 'querystring', fields);
  findNul(request.body, 'body', fields);
  done(fields.length > 0 ? new AppError('VALIDATION_FAILED', `NUL bytes are not allowed: ${fields.map((f) => f.field).join(', ')}`, { fields }) : undefined);
}

function findNul(value: unknown, path: string, found: FieldProblem[], depth = 0): void {
  if (found.length >= 20 || depth > MAX_JSON_DEPTH + 2) return;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) found.push({ field: path, message: 'must not contain NUL bytes' });
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => findNul(item, `${path}.${index}`, found, depth + 1));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\u0000')) found.push({ field: path, message: 'must not have a key containing NUL bytes' });
      else findNul(item, `${path}.${key}`, found, depth + 1);
    }
  }
}

/** 414 for a request target longer than {@link MAX_URL_LENGTH}. */
export function refuseLongUrls(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  if (request.url.length <= MAX_URL_LENGTH) return done();
  done(new AppError('URI_TOO_LONG', `The request target is ${request.url.length} bytes; at most ${MAX_URL_LENGTH} are accepted`, { fields: [{ field: 'url', message: `must be at most ${MAX_URL_LENGTH} bytes` }] }));
}

/** Largest refused body the server still reads (and discards) so the client sees its 413. */
export const MAX_DRAINED_BODY = 64 * 1024 * 1024;

/**
 * Fastify closes the connection after refusing a body (413): a client still uploading then gets a
 * reset instead of the answer. Below {@link MAX_DRAINED_BODY}, the rest of the body is read and
 * dropped instead, the connection kept, so the client finishes sending and reads the 413.
 */
export function drainRefusedBody(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: Error | null, payload: unknown) => void): void {
  if (reply.statusCode === 413 && reply.getHeader('connection') === 'close' && Number(request.headers['content-length'] ?? 0) <= MAX_DRAINED_BODY) {
    reply.removeHeader('connection');
    request.raw.resume();
  }
  done(null, payload);
}

/** What Fastify's router refuses before any route runs (a malformed URL, a too long parameter). */
export function frameworkError(error: FastifyError): AppError {
  if (error.code === 'FST_ERR_BAD_URL') return new AppError('BAD_REQUEST', 'The request path is not a valid URL path (bad percent-encoding?)', { fields: [{ field: 'path', message: 'is not a valid URL path' }] });
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return new AppError('URI_TOO_LONG', 'A path parameter is too long', { fields: [{ field: 'path', message: 'has a parameter that is too long' }] });
  return new AppError('INTERNAL', error.message, { cause: error });
}

/**
 * Node's HTTP parser rejects some requests before Fastify sees them (headers too large, a
 * malformed request line, a timeout); these still get a problem+json answer. A request line that
 * did not fit in the header limit is a 414, other header overflows a 431.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let problem: AppError;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') problem = new AppError('REQUEST_TIMEOUT', 'The request did not arrive in time');
  else if (error.code === 'HPE_HEADER_OVERFLOW' && requestLineTooLong((error as { rawPacket?: unknown }).rawPacket)) {
    problem = new AppError('URI_TOO_LONG', 'The request line is too long', { fields: [{ field: 'url', message: 'is too long' }] });
  } else if (error.code === 'HPE_HEADER_OVERFLOW') problem = new AppError('HEADERS_TOO_LARGE', 'The request headers are too large', { fields: [{ field: 'headers', message: 'are too large' }] });
  else problem = new AppError('BAD_REQUEST', `The request is not valid HTTP (${error.code ?? 'parse error'})`);
  const body = JSON.stringify(toProblem(problem));
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  setTimeout(() => socket.destroy(), 1_000).unref();
}

// Whether the request line alone (method, target, version) is longer than a URL may be.
function requestLineTooLong(raw: unknown): boolean {
  if (!Buffer.isBuffer(raw)) return false;
  const end = raw.indexOf('\r\n');
  return end === -1 || end > MAX_URL_LENGTH;
}

/**
 * A PostgreSQL data exception (class 22: a value out of range, invalid text, a NUL byte) or an
 * index row too large (54000) means input the schemas let through: a 400, not a 500. It names no
 * field, so the fuzz test fails on it and the schema that should have refused it gets fixed.
 */
export function dataException(error: unknown): AppError | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !(code.startsWith('22') || code === '54000') || code.length !== 5) return undefined;
  return new AppError('BAD_REQUEST', 'A value in the request is out of range or malformed', { cause: error });
}
