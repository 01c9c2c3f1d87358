import Type from 'typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.ts';
import { createHttpServer } from '../src/http.ts';
import { createLogger } from '../src/logger.ts';
import { capturedLogger } from '../src/testing/logs.ts';

describe('the HTTP server factory', async () => {
  let ready = true;
  const app = await createHttpServer({
    service: 'demo',
    logger: false,
    bodyLimit: 1024,
    readiness: async () => {
      if (!ready) throw new Error('database is down');
    },
  });
  app.post(
    '/api/v1/things',
    { schema: { body: Type.Object({ name: Type.String({ minLength: 1 }), count: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }) } },
    async (request) => ({ created: request.body.name }),
  );
  app.get('/api/v1/conflict', async () => {
    throw new AppError('CONFLICT', 'Thing TST already exists', { fields: [{ field: 'body.code', message: 'is taken', value: 'TST' }] });
  });
  app.get('/api/v1/crash', async () => {
    throw new Error('secret internals: password=hunter2');
  });
  afterAll(() => app.close());

  it('names each invalid field in a problem+json 400', async () => {
    const response = await app.inject({ method: 'POST', url: '/api/v1/things', payload: { count: -1 } });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = response.json<{ code: string; errors: { field: string }[]; status: number; title: string }>();
    expect(problem).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', title: 'Request validation failed' });
    expect(problem.errors.map((e) => e.field).sort()).toEqual(['body.count', 'body.name']);
  });

  it('renders AppError with its status, detail and fields', async () => {
    const response = await app.inject({ url: '/api/v1/conflict' });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toEqual({
      type: 'https://archipelago.dev/problems/conflict',
      title: 'Conflict',
      status: 409,
      detail: 'Thing TST already exists',
      code: 'CONFLICT',
      instance: '/api/v1/conflict',
      errors: [{ field: 'body.code', message: 'is taken', value: 'TST' }],
    });
  });

  it('hides the internals of an unexpected error', async () => {
    const response = await app.inject({ url: '/api/v1/crash' });
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('hunter2');
    expect(response.json()).toMatchObject({ code: 'INTERNAL', status: 500 });
  });

  it('answers unknown routes, malformed JSON and oversized bodies with problems', async () => {
    expect((await app.inject({ url: '/nowhere' })).json()).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const malformed = await app.inject({ method: 'POST', url: '/api/v1/things', headers: { 'content-type': 'application/json' }, payload: '{"name":' });
    expect(malformed.json()).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    const xml = await app.inject({ method: 'POST', url: '/api/v1/things', headers: { 'content-type': 'application/xml' }, payload: '<thing/>' });
    expect(xml.json()).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    const big = await app.inject({ method: 'POST', url: '/api/v1/things', payload: { name: 'x'.repeat(5000), count: 1 } });
    expect(big.json()).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('keeps a valid incoming request id and makes one otherwise', async () => {
    const kept = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'abc-123' } });
    expect(kept.headers['x-request-id']).toBe('abc-123');
    const made = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('reports readiness from its check', async () => {
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
    ready = false;
    const down = await app.inject({ url: '/health/ready' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ code: 'UNAVAILABLE', detail: 'demo is not ready; its log says why' });
    expect(down.body).not.toContain('database is down');
    ready = true;
    expect((await app.inject({ url: '/health/live' })).json()).toMatchObject({ status: 'ok', service: 'demo', pid: process.pid });
  });

  it('publishes its routes and schemas as OpenAPI at /docs/json', async () => {
    const doc = (await app.inject({ url: '/docs/json' })).json<{ openapi: string; paths: Record<string, { post?: { requestBody?: unknown } }> }>();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.paths['/api/v1/things']?.post?.requestBody).toBeDefined();
    expect(doc.paths['/health/live']).toBeUndefined();
  });
});

describe('the access log', () => {
  it('writes one line per request, when it is answered: method, URL (secrets redacted), status and time', async () => {
    const lines: string[] = [];
    const app = await createHttpServer({ service: 'demo', logger: createLogger('demo', 'info', { write: (line: string) => void lines.push(line) }) });
    app.get('/api/v1/ping', async () => ({ pong: true }));
    try {
      expect((await app.inject({ url: '/api/v1/ping?token=s3cret&lang=en' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/api/v1/nowhere' })).statusCode).toBe(404);
      const logged = lines.map((line) => JSON.parse(line) as { msg: string; req?: { method: string; url: string }; res?: { statusCode: number }; responseTime?: number; reqId?: string });
      expect(logged.map((line) => line.msg)).toEqual(['request completed', 'request completed']);
      expect(logged[0]).toMatchObject({ req: { method: 'GET', url: '/api/v1/ping?token=[redacted]&lang=en' }, res: { statusCode: 200 } });
      expect(typeof logged[0]!.reqId).toBe('string');
      expect(logged[0]!.responseTime).toBeGreaterThanOrEqual(0);
      expect(logged[1]).toMatchObject({ req: { method: 'GET', url: '/api/v1/nowhere' }, res: { statusCode: 404 } });
    } finally {
      await app.close();
    }
  });
});

describe('the liveness route', () => {
  it('is not logged when it answers, so the once-a-second polls do not bury what the service did', async () => {
    const captured = capturedLogger('demo');
    const app = await createHttpServer({ service: 'demo', logger: captured.logger });
    app.get('/api/v1/ping', async () => ({ pong: true }));
    try {
      for (let i = 0; i < 3; i++) expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/api/v1/ping' })).statusCode).toBe(200);
      expect(captured.lines.some((line) => line.includes('/api/v1/ping'))).toBe(true);
      expect(captured.lines.filter((line) => line.includes('/health/live'))).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
