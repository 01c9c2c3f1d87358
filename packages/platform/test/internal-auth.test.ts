import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.ts';
import { createHttpServer } from '../src/http.ts';
import {
  clientAddress, localKeyring, OPERATOR, OPERATOR_ONLY, SERVICE_TOKEN_HEADER, serviceCredentialsFromEnv,
} from '../src/internal-auth/index.ts';
import { asPrincipal, testCredentials, testCredentialsEnv, testServiceToken } from '../src/testing/credentials.ts';

describe('service tokens', () => {
  it('are signed once per audience and reused until close to expiry, with iss = sub = signer and a life of at most 60 s', async () => {
    const core = testCredentials('core');
    const first = await core.token('iam');
    expect(await core.token('iam')).toBe(first);
    expect(await core.token('masterdata')).not.toBe(first);
    const claims = decodeJwt(first);
    expect(claims).toMatchObject({ iss: 'core', sub: 'core', aud: 'iam' });
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(60);
    expect(await testCredentials('iam').verify(first)).toBe('core');
    await expect(testCredentials('masterdata').verify(first)).rejects.toThrow(/meant for another service/);
  });

  it('refuse a token issued in the future', async () => {
    const early = await testServiceToken('core', 'iam', { issuedAtSeconds: Math.floor(Date.now() / 1000) + 30, ttlSeconds: 30 });
    await expect(testCredentials('iam').verify(early)).rejects.toThrow(/future/);
  });
});

describe('credentials from the environment', () => {
  it('name the missing or wrong variable', () => {
    const env = testCredentialsEnv('core');
    expect(serviceCredentialsFromEnv('core', env).principal).toBe('core');
    expect(() => serviceCredentialsFromEnv('core', { ...env, SERVICE_PRIVATE_KEY: '' })).toThrow(/SERVICE_PRIVATE_KEY: is required/);
    expect(() => serviceCredentialsFromEnv('core', { ...env, SERVICE_PUBLIC_KEYS: undefined })).toThrow(ConfigError);
    expect(() => serviceCredentialsFromEnv('core', { ...env, SERVICE_PUBLIC_KEYS: '{"iam":"nope"}' })).toThrow(/no Ed25519 public key for "iam"/);
    // iam's key given to core: refused at start, not at the first call.
    expect(() => serviceCredentialsFromEnv('core', { ...env, SERVICE_PRIVATE_KEY: testCredentialsEnv('iam').SERVICE_PRIVATE_KEY })).toThrow(/does not match core's key/);
  });
});

describe('the internal route guard', async () => {
  const app = await createHttpServer({ service: 'core', logger: false, credentials: testCredentials('core') });
  // Routes registered after the server was created (as every service and later feature does) are covered.
  app.get('/internal/v1/thing', async (request) => ({ caller: request.servicePrincipal }));
  app.post('/internal/v1/jobs/:name/run', { config: OPERATOR_ONLY }, async () => ({ ran: true }));
  app.get('/api/v1/whoami', async (request) => ({ address: clientAddress(request), principal: request.servicePrincipal ?? null }));
  afterAll(() => app.close());

  it('refuses requests without a token, whatever the spelling of the path', async () => {
    for (const url of ['/internal/v1/thing', '/%69nternal/v1/thing', '/internal/v1/thing?x=1', '/internal/v1/nothing-here', '/internal']) {
      const response = await app.inject({ url });
      expect(response.statusCode, url).toBe(401);
      expect(response.json(), url).toMatchObject({ code: 'UNAUTHENTICATED', detail: expect.stringContaining(SERVICE_TOKEN_HEADER) as unknown });
    }
    expect((await asPrincipal(app, 'masterdata', 'core').inject({ url: '/internal/v1/thing' })).json()).toEqual({ caller: 'masterdata' });
  });

  it('keeps operator routes to the operator', async () => {
    expect((await asPrincipal(app, 'gateway', 'core').inject({ method: 'POST', url: '/internal/v1/jobs/x/run' })).statusCode).toBe(403);
    expect((await asPrincipal(app, OPERATOR, 'core').inject({ method: 'POST', url: '/internal/v1/jobs/x/run' })).json()).toEqual({ ran: true });
  });

  it('trusts X-Forwarded-For only with the gateway\'s token, and ignores a bad token outside /internal', async () => {
    const whoami = async (headers: Record<string, string>) => (await app.inject({ url: '/api/v1/whoami', headers: { 'x-forwarded-for': '203.0.113.7', ...headers } })).json<unknown>();
    expect(await whoami({})).toEqual({ address: '127.0.0.1', principal: null });
    expect(await whoami({ [SERVICE_TOKEN_HEADER]: await testCredentials('masterdata').token('core') })).toEqual({ address: '127.0.0.1', principal: 'masterdata' });
    expect(await whoami({ [SERVICE_TOKEN_HEADER]: await testServiceToken('gateway', 'core', { signedBy: 'core' }) })).toEqual({ address: '127.0.0.1', principal: null });
    expect(await whoami({ [SERVICE_TOKEN_HEADER]: await testCredentials('gateway').token('core') })).toEqual({ address: '203.0.113.7', principal: 'gateway' });
  });

  it('refuses every internal request on a server without credentials', async () => {
    const bare = await createHttpServer({ service: 'core', logger: false });
    bare.get('/internal/v1/thing', async () => ({ open: true }));
    expect((await asPrincipal(bare, OPERATOR, 'core').inject({ url: '/internal/v1/thing' })).statusCode).toBe(401);
    await bare.close();
  });
});

describe('the local keyring', () => {
  it('generates every principal\'s keys once, keeps them (and the role passwords beside them) in a 0600 file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-keys-'));
    try {
      const file = path.join(dir, 'credentials.json');
      await writeFile(file, JSON.stringify({ CORE_APP_PASSWORD: 'kept' }), { mode: 0o600 });
      const first = await localKeyring(dir, ['iam', 'core', OPERATOR]);
      const again = await localKeyring(dir, ['iam', 'core', OPERATOR]);
      expect(again.privateKey('core')).toBe(first.privateKey('core'));
      expect(again.publicKeysJson()).toBe(first.publicKeysJson());
      expect(Object.keys(JSON.parse(first.publicKeysJson()) as object)).toEqual(['iam', 'core', OPERATOR]);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ CORE_APP_PASSWORD: 'kept', OPERATOR_PRIVATE_KEY: first.privateKey(OPERATOR) });
      // What a service process gets works: core signs, iam verifies, with nothing else shared.
      const core = serviceCredentialsFromEnv('core', first.environmentOf('core'));
      const iam = serviceCredentialsFromEnv('iam', first.environmentOf('iam'));
      expect(await iam.verify(await core.token('iam'))).toBe('core');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
