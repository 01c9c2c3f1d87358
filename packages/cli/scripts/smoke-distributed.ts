// `npm run smoke:distributed`: the whole distributed topology as `npm run start:distributed` runs
// it, on free ports: every service ready behind the gateway (core and notification twice), a
// change carried from masterdata to core, two sockets through the gateway on the two notification
// instances, then Ctrl-C, after which none of its processes and none of its files are left.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { io as connect } from 'socket.io-client';
import { envPrefix, loadRegistry } from '@archipelago/registry';
import { freePort, repositoryRoot } from '@archipelago/platform';
import { build } from '../build.mjs';

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
const freeBase = async (offsets: readonly number[]) => {
  for (;;) {
    const port = await freePort();
    if ((await Promise.all(offsets.map((o) => canListen(port + o)))).every(Boolean)) return port;
  }
};
const fail = (message: string): never => {
  process.stderr.write(`✗ ${message}\n`);
  process.exit(1);
};

const began = Date.now();
await build();
const env: Record<string, string> = { ARCHIPELAGO_PG_PORT: String(await freeBase([1, 2, 3, 4, 5, 6])), ADMIN_PASSWORD: 'smoke test admin password', LOG_LEVEL: 'warn' };
for (const service of loadRegistry(undefined, {}).services) env[`${envPrefix(service.key)}_PORT`] = String(await freeBase([0, 100]));
const cli = spawn(process.execPath, [path.join(repositoryRoot, 'dist/packages/cli/src/main.mjs'), 'start', '--distributed'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
cli.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
cli.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
const waitFor = async (pattern: RegExp, seconds = 240) => {
  for (let i = 0; i < seconds * 10 && !pattern.test(output) && cli.exitCode === null; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  return output.match(pattern) ?? fail(`no ${pattern} in:\n${output}`);
};
try {
  const ready = await waitFor(/All 6 services \((\d+) processes\) ready in ([\d.]+) s/);
  const gateway = `http://127.0.0.1:${env.GATEWAY_PORT}`;
  const health = (await (await fetch(`${gateway}/health`)).json()) as { status: string; services: Record<string, { instances?: { ready: number } }> };
  if (health.status !== 'ready' || health.services.core?.instances?.ready !== 2 || health.services.notification?.instances?.ready !== 2) fail(`health: ${JSON.stringify(health)}`);
  const json = { 'content-type': 'application/json' };
  const login = await fetch(`${gateway}/api/v1/auth/login`, { method: 'POST', headers: json, body: JSON.stringify({ email: 'admin@example.com', password: env.ADMIN_PASSWORD }) });
  const token = ((await login.json()) as { accessToken: string }).accessToken;
  const headers = { ...json, authorization: `Bearer ${token}` };
  const post = (route: string, body: unknown) => fetch(`${gateway}${route}`, { method: 'POST', headers, body: JSON.stringify(body) });
  if ((await post('/api/v1/labels', { code: 'SMOKE', label: 'Smoke', display_name: 'Smoke', abbreviation: 'S.', display_order: 9 })).status !== 201) fail('label not created');
  const propagationStarted = Date.now();
  let status = 0;
  for (let i = 0; i < 300 && status !== 201; i++) {
    status = (await post('/api/v1/resources', { reference_number: 'REF-SMOKE', label_code: 'SMOKE', first_name: 'A', last_name: 'B' })).status;
    if (status !== 201) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (status !== 201) fail(`core never learnt label SMOKE (last ${status})`);
  const propagationMs = Date.now() - propagationStarted;
  const sockets = [connect(gateway, { path: '/socket.io', transports: ['websocket'], auth: { token }, forceNew: true, reconnection: false }), connect(gateway, { path: '/socket.io', transports: ['websocket'], auth: { token }, forceNew: true, reconnection: false })];
  await Promise.all(sockets.map((socket) => new Promise<void>((resolve, reject) => {
    socket.once('badge:update', () => resolve());
    socket.once('connect_error', reject);
  })));
  for (const socket of sockets) socket.disconnect();
  const pids = [...output.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
  const dataDir = (await waitFor(/Data in (\S+)/))[1]!;
  cli.kill('SIGINT');
  const code = await exited;
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  if (code !== 0) fail(`the CLI exited with ${code}:\n${output}`);
  if (alive.length > 0) fail(`still running after Ctrl-C: ${alive.join(', ')}`);
  if (existsSync(dataDir)) fail(`${dataDir} is still there`);
  process.stdout.write(
    `✓ distributed topology: ${ready[1]} processes ready in ${ready[2]} s; label reached core through a lookup in ${propagationMs} ms (polling every 100 ms); ` +
      `2 sockets through the gateway; Ctrl-C left no process (${pids.length} pids checked) and no files. Total ${((Date.now() - began) / 1000).toFixed(1)} s\n`,
  );
} finally {
  if (cli.exitCode === null) {
    cli.kill('SIGINT');
    await exited;
  }
}
