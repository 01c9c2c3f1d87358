import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { sql } from 'kysely';
import Type from 'typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../src/http.ts';
import { useTestDatabase } from '../src/testing/index.ts';

interface ProblemBody { status: number; code: string; errors?: { field: string }[] }

// Every value below reaches PostgreSQL as the route passes it on; without the checks in input.ts
// each one is a 500 (PostgreSQL refuses it) or a silently coerced value.
describe('hostile input', async () => {
  const database = await useTestDatabase('masterdata');
  const app = await createHttpServer({ service: 'demo', logger: false });
  app.post(
    '/api/v1/echo',
    {
      schema: {
        body: Type.Object(
          { code: Type.Optional(Type.String({ maxLength: 20 })), text: Type.Optional(Type.String({ maxLength: 200 })), count: Type.Optional(Type.Integer()), day: Type.Optional(Type.String({ format: 'date' })), id: Type.Optional(Type.String({ format: 'uuid' })), nested: Type.Optional(Type.Unknown()) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { code, text, count, day, id } = request.body;
      const { rows } = await sql<{ code: string | null }>`SELECT ${code ?? null}::text AS code, ${text ?? null}::text AS text, ${count ?? null}::bigint AS count, ${day ?? null}::date AS day, ${id ?? null}::uuid AS id`.execute(database.db);
      return { code: rows[0]?.code ?? null, received: request.body };
    },
  );
  app.get(
    '/api/v1/page/:name',
    { schema: { params: Type.Object({ name: Type.String({ maxLength: 50 }) }), querystring: Type.Object({ offset: Type.Integer({ minimum: 0, default: 0 }), q: Type.Optional(Type.String({ maxLength: 50 })) }) } },
    async (request) => {
      await sql`SELECT ${request.params.name}::text, ${request.query.q ?? ''}::text OFFSET ${request.query.offset}`.execute(database.db);
      return { offset: request.query.offset };
    },
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = new URL(url);
  afterAll(() => app.close());

  const post = (payload: string) => app.inject({ method: 'POST', url: '/api/v1/echo', headers: { 'content-type': 'application/json' }, payload });
  const expectProblem = (response: { statusCode: number; headers: Record<string, unknown>; json: <T>() => T }, status: number, field: string) => {
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json<ProblemBody>().errors?.map((e) => e.field)).toContain(field);
  };

  it('refuses NUL bytes in body, path and query, naming the field', async () => {
    expectProblem(await post(JSON.stringify({ text: 'a\u0000b' })), 400, 'body.text');
    expectProblem(await post(JSON.stringify({ nested: [{ deep: 'x\u0000' }] })), 400, 'body.nested.0.deep');
    expectProblem(await app.inject({ url: '/api/v1/page/a%00b' }), 400, 'params.name');
    expectProblem(await app.inject({ url: '/api/v1/page/a?q=%00' }), 400, 'querystring.q');
  });

  it('refuses numbers JavaScript cannot hold exactly (an offset beyond bigint) and non-finite ones', async () => {
    expectProblem(await app.inject({ url: '/api/v1/page/a?offset=99999999999999999999' }), 400, 'querystring.offset');
    expectProblem(await post('{"count": 1e400}'), 400, 'body.count');
    for (const offset of ['1e400', 'Infinity', '-1e400']) expectProblem(await app.inject({ url: `/api/v1/page/a?offset=${offset}` }), 400, 'querystring.offset');
    expect((await app.inject({ url: '/api/v1/page/a?offset=42' })).json()).toEqual({ offset: 42 });
  });

  it('reads a number in a query string only when written in decimals', async () => {
    for (const offset of ['0x10', '1e2', '0b11', '%2016', '16%20', '+16', '']) expectProblem(await app.inject({ url: `/api/v1/page/a?offset=${offset}` }), 400, 'querystring.offset');
    expect((await app.inject({ url: '/api/v1/page/a?offset=016' })).json()).toEqual({ offset: 16 });
    expect((await app.inject({ url: '/api/v1/page/a' })).json()).toEqual({ offset: 0 });
  });

  it('refuses year 0 and uuids PostgreSQL does not read', async () => {
    expectProblem(await post(JSON.stringify({ day: '0000-01-01' })), 400, 'body.day');
    expectProblem(await post(JSON.stringify({ id: 'urn:uuid:8a3a9c2e-0000-4000-8000-000000000000' })), 400, 'body.id');
    expect((await post(JSON.stringify({ day: '0001-01-01' }))).statusCode).toBe(200);
  });

  it('does not coerce body types: a number is not a code, true is not 1, null is not ""', async () => {
    expectProblem(await post(JSON.stringify({ code: 123 })), 400, 'body.code');
    expectProblem(await post(JSON.stringify({ count: true })), 400, 'body.count');
    expectProblem(await post(JSON.stringify({ code: null })), 400, 'body.code');
    expectProblem(await post(JSON.stringify({ count: '5' })), 400, 'body.count');
    expectProblem(await post(JSON.stringify({ surprise: 1 })), 400, 'body.surprise');
  });

  it('refuses deeply nested JSON as a 400 naming the body', async () => {
    expectProblem(await post(`${'['.repeat(5000)}${']'.repeat(5000)}`), 400, 'body');
    expectProblem(await post(JSON.stringify({ nested: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) as unknown })), 400, 'body');
    expectProblem(await post('{"text": "unterminated'), 400, 'body');
  });

  const raw = async (request: string): Promise<{ status: number; headers: string; body: string }> => {
    const socket = net.connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    socket.on('error', () => undefined); // the server may close while we still write
    socket.write(request);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'close');
    const text = Buffer.concat(chunks).toString();
    const [head = '', body = ''] = text.split('\r\n\r\n');
    return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body };
  };

  it('answers Fastify\'s and Node\'s own refusals as problem+json: bad URL, 414, 431, bad HTTP', async () => {
    const badUrl = await raw('GET /api/v1/page/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(badUrl.status).toBe(400);
    expect(badUrl.headers).toContain('application/problem+json');
    expect(JSON.parse(badUrl.body)).toMatchObject({ status: 400, errors: [{ field: 'path' }] });

    const long = await raw(`GET /api/v1/page/a?q=${'x'.repeat(10_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(long.status).toBe(414);
    expect(JSON.parse(long.body)).toMatchObject({ code: 'URI_TOO_LONG' });
    const longer = await raw(`GET /api/v1/page/a?q=${'x'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(longer.status).toBe(414);
    expect(longer.headers).toContain('application/problem+json');

    const headers = await raw(`GET /api/v1/page/a HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(20_000)}\r\n\r\n`);
    expect(headers.status).toBe(431);
    expect(JSON.parse(headers.body)).toMatchObject({ code: 'HEADERS_TOO_LARGE', status: 431 });

    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect(JSON.parse(garbage.body)).toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('reads a refused body to its end, so a client still uploading gets its 413 instead of a reset', async () => {
    const socket = net.connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    const errors: string[] = [];
    socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    const chunks: Buffer[] = [];
    const answered = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const size = 8 * 1024 * 1024;
    socket.write(`POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
    socket.write('x'.repeat(64 * 1024));
    await answered; // the 413 is out while most of the body is still to be sent
    const rest = Buffer.alloc(size - 64 * 1024, 'x');
    await new Promise<void>((resolve) => socket.write(rest, () => resolve()));
    socket.end();
    await once(socket, 'close');
    expect(errors).toEqual([]);
    const text = Buffer.concat(chunks).toString();
    expect(text).toMatch(/^HTTP\/1.1 413 /);
    expect(text).toContain('application/problem+json');
  });

  it('answers an unsupported content type with a 415 problem', async () => {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port, path: '/api/v1/echo', method: 'POST', headers: { 'content-type': 'text/csv' } }, resolve);
      request.on('error', reject);
      request.end('a,b');
    });
    response.resume();
    expect(response.statusCode).toBe(415);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});
