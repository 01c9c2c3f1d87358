import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@archipelago/platform/testing';
import { envPrefix, loadRegistry } from '@archipelago/registry';
import { copyRepository, linkWorkspace } from '../../packages/cli/test/repository-copy.ts';

// Issue 10's trial, end to end (`npm run test:scaffold`, a few minutes): in a copy of the
// repository, `npm run cli -- new service audit-log` with a group consumer of core's
// order.created, a departments lookup, a permission and a guarded route; nothing outside
// services/audit-log/ and the registry changes; generate; the new service's own test; then the
// whole system under `npm start`, driven through the gateway.
const ADMIN_PASSWORD = 'scaffold test admin password';

const until = async <T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> => {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
};

describe('a service added by the scaffold', async () => {
  const copy = await copyRepository();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'archipelago-scaffold-'));
  await chmod(dataDir, 0o755); // run as root, PostgreSQL's own user must be able to enter it
  let stack: ChildProcess | undefined;
  afterAll(async () => {
    if (stack && stack.exitCode === null) {
      const exited = new Promise((resolve) => stack!.once('exit', resolve));
      stack.kill('SIGINT');
      await exited;
    }
    await copy.remove();
    await rm(dataDir, { recursive: true, force: true });
  });
  const npm = (...args: string[]) => copy.run('npm', ['run', '--silent', ...args]);

  it('touches only its folder and the registry', { timeout: 120_000 }, async () => {
    const scaffold = await npm('cli', '--', 'new', 'service', 'audit-log', '--consumes', 'core:order.created', '--lookup', 'masterdata:department:name,is_active');
    expect(scaffold.code, scaffold.output).toBe(0);
    const changed = copy.changed();
    expect(changed).toContain('registry/src/services.ts');
    expect(changed.filter((file) => file !== 'registry/src/services.ts' && !file.startsWith('services/audit-log/'))).toEqual([]);
  });

  it('derives infra/ with generate, and passes its own test', { timeout: 300_000 }, async () => {
    await linkWorkspace(copy, 'services/audit-log'); // what `npm install` does for a new workspace
    expect((await npm('generate')).code).toBe(0);
    const check = await npm('generate', '--', '--check');
    expect(check.code, check.output).toBe(0);
    const own = await copy.run(path.join(copy.root, 'node_modules/.bin/vitest'), ['run', 'services/audit-log/']);
    expect(own.code, own.output).toBe(0);
  });

  it('runs under npm start: an order created in core reaches its consumer, its guarded route serves it through the gateway', { timeout: 300_000 }, async () => {
    const keys = [...loadRegistry(undefined, {}).services.map((s) => s.key), 'audit-log'];
    const env: Record<string, string> = { ARCHIPELAGO_PG_PORT: String(await freePort()), ARCHIPELAGO_DATA_DIR: dataDir, ADMIN_PASSWORD, LOG_LEVEL: 'warn' };
    for (const key of keys) env[`${envPrefix(key)}_PORT`] = String(await freePort());
    let output = '';
    stack = spawn(process.execPath, ['dist/packages/cli/src/main.mjs', 'start'], { cwd: copy.root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    stack.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    stack.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await until(async () => {
      if (stack!.exitCode !== null) throw new Error(`npm start exited (${stack!.exitCode}):\n${output}`);
      return /All \d+ services ready/.test(output) ? true : undefined;
    }, 'every service ready', 240_000);
    expect(output).toContain(`All ${keys.length} services ready`);
    expect(output).toMatch(new RegExp(`✓ audit-log +http://127\\.0\\.0\\.1:${env.AUDIT_LOG_PORT}`));

    const gateway = `http://127.0.0.1:${env.GATEWAY_PORT}`;
    const call = async (method: string, url: string, token?: string, body?: unknown) => {
      const response = await fetch(`${gateway}${url}`, {
        method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const signIn = async (email: string, password: string) => String((await call('POST', '/api/v1/auth/login', undefined, { email, password })).body.accessToken);
    const admin = await signIn('admin@example.com', ADMIN_PASSWORD);

    // IAM registered the declared permission from the registry and granted it to admin.
    const permissions = await call('GET', '/api/v1/permissions?limit=500', admin);
    expect(JSON.stringify(permissions.body)).toContain('audit-log:read');

    // On a first start core's departments_lookup fills from masterdata's export just after core is
    // ready (readiness does not wait for the snapshot): until then the department is a 422.
    const order = await until(async () => {
      const created = await call('POST', '/api/v1/orders', admin, { item_name: 'Audited item', quantity: 2, department_code: 'LAB' });
      if (created.status === 422) return undefined;
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return created;
    }, "core's departments lookup");
    const recorded = await until(async () => {
      const page = await call('GET', '/api/v1/audit-log?type=order.created&limit=500', admin);
      expect(page.status).toBe(200);
      return (page.body.items as { aggregate_id: string; source: string }[]).find((item) => item.aggregate_id === order.body.id);
    }, "audit-log's record of the order");
    expect(recorded).toMatchObject({ source: 'core', type: 'order.created', payload: { item_name: 'Audited item', department_code: 'LAB' } });

    // The permission guards the route: no token is a 401, a user without audit-log:read a 403.
    expect((await call('GET', '/api/v1/audit-log')).status).toBe(401);
    expect((await call('POST', '/api/v1/roles', admin, { name: 'clerk', permissions: ['orders:read'] })).status).toBe(201);
    const clerk = { email: 'clerk@example.com', password: 'clerk password of some length' };
    const created = await call('POST', '/api/v1/users', admin, { ...clerk, display_name: 'Clerk', roles: ['clerk'], department_code: 'LAB' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await call('GET', '/api/v1/audit-log', await signIn(clerk.email, clerk.password))).status).toBe(403);

    // The departments lookup was filled from masterdata's export: the CLI finds no drift.
    const drift = await until(async () => {
      const result = await copy.run(process.execPath, ['dist/packages/cli/src/main.mjs', 'sync', 'drift', 'departments_lookup', '-s', 'audit-log'], env);
      return result.code === 0 ? result.output : undefined;
    }, 'the departments lookup in sync');
    expect(drift).toMatch(/audit-log\.departments_lookup: [1-9]\d* master rows; missing 0/);

    const exited = new Promise((resolve) => stack!.once('exit', resolve));
    stack.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
