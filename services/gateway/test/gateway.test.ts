import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { createHttpServer } from '@archipelago/platform';
import { freePort } from '@archipelago/platform/testing';
import { buildApp } from '../src/app.ts';
import { gatewayUpstreams } from '../src/upstreams.ts';

// The gateway in front of a real HTTP upstream on loopback standing in for masterdata (it echoes
// what it received); every other upstream points at a port where nothing listens.
describe('the gateway', async () => {
  let upstreamReady = true;
  const upstream = await createHttpServer({
    service: 'echo',
    logger: false,
    readiness: async () => {
      if (!upstreamReady) throw new Error('not ready');
    },
  });
  upstream.all('/api/v1/labels/*', async (request) => ({ method: request.method, url: request.url, requestId: request.headers['x-request-id'], body: request.body }));
  const upstreamUrl = await upstream.listen({ host: '127.0.0.1', port: 0 });
  const deadUrl = `http://127.0.0.1:${await freePort()}`;
  const registry = loadRegistry(undefined, {});
  const env = { IAM_URL: deadUrl, CORE_URL: deadUrl, NOTIFICATION_URL: deadUrl, REPORTING_URL: deadUrl, MASTERDATA_URL: upstreamUrl };
  const gateway = await buildApp({ logger: false, upstreams: gatewayUpstreams(registry, env) });
  afterAll(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('routes a registry prefix to the owning service with method, path, query, body and request id', async () => {
    const response = await gateway.inject({ method: 'PUT', url: '/api/v1/labels/MR?x=1', headers: { 'x-request-id': 'trace-me-1' }, payload: { label: 'Mr.' } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ method: 'PUT', url: '/api/v1/labels/MR?x=1', requestId: 'trace-me-1', body: { label: 'Mr.' } });
    expect(response.headers['x-request-id']).toBe('trace-me-1');
  });

  it('answers an unknown route itself with 404', async () => {
    const response = await gateway.inject({ url: '/api/v1/unknown' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('gives a 502 problem when the upstream is down, and stays up', async () => {
    const response = await gateway.inject({ url: '/api/v1/orders' });
    expect(response.statusCode).toBe(502);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ code: 'UPSTREAM_FAILED' });
    expect((await gateway.inject({ url: '/api/v1/labels/DR' })).statusCode).toBe(200);
  });

  it('aggregates readiness of every upstream', async () => {
    const response = await gateway.inject({ url: '/health' });
    expect(response.statusCode).toBe(503);
    const body = response.json<{ status: string; services: Record<string, { status: string }> }>();
    expect(body.status).toBe('degraded');
    expect(body.services.masterdata?.status).toBe('ready');
    expect(body.services.core?.status).toBe('unavailable');
    upstreamReady = false;
    const notReady = (await gateway.inject({ url: '/health' })).json<{ services: Record<string, { status: string; detail?: string }> }>();
    expect(notReady.services.masterdata).toMatchObject({ status: 'unavailable', detail: 'HTTP 503' });
    upstreamReady = true;
  });

  it('refuses to start without an upstream URL, naming the variable', () => {
    expect(() => gatewayUpstreams(registry, { ...env, CORE_URL: undefined })).toThrow(/CORE_URL: is required/);
  });
});
