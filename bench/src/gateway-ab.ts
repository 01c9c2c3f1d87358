/**
 * Two builds of the gateway side by side, for A/B work on its forwarding path on a machine too busy
 * for the `gateway` scenario's latencies to mean anything:
 * `node [--max-semi-space-size=N] --import tsx bench/src/gateway-ab.ts <checkout A> <checkout B> [seconds] [rounds] [--log]`.
 * Both gateways' `buildApp` run in this process in front of one bare node:http upstream (its own
 * process), with a stand-in IAM issuing a real token; autocannon (10 connections, its own process)
 * loads A and B in turn, alternating which goes first. Reported per side: this process's CPU per
 * request and scavenges per 1,000 requests while it was loaded (medians over the rounds; requests/s too, as noisy as the machine), and B/A
 * per round. CPU time, unlike latency, is what the gateway itself spends, whoever else runs.
 * With `--log` both gateways log as in production (info, JSON lines, one synchronous write each,
 * here to /dev/null), so that the access log's cost is in the figures; without it they log nothing.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { createLogger } from '@archipelago/platform';
import { startTestIdentity } from '@archipelago/platform/testing/identity';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { remoteAuthSources } from '@archipelago/platform/auth';
import type * as GatewayApp from '../../services/gateway/src/app.ts';
import { startBareServer } from './lib/bare-server.ts';
import { REPOSITORY_ROOT } from './lib/system.ts';

const logged = process.argv.includes('--log');
const [checkoutA, checkoutB, seconds = '3', rounds = '8'] = process.argv.slice(2).filter((arg) => arg !== '--log');
if (!checkoutA || !checkoutB) throw new Error('usage: gateway-ab.ts <checkout A> <checkout B> [seconds] [rounds] [--log]');
const devNull = fs.openSync('/dev/null', 'w');
const logger = () => (logged ? createLogger('gateway', 'info', { write: (line: string) => void fs.writeSync(devNull, line) }) : false);
const PATH = '/api/v1/labels/MR';
const AUTOCANNON = createRequire(path.join(REPOSITORY_ROOT, 'package.json')).resolve('autocannon/autocannon.js');

const scavenges = { count: 0 };
new PerformanceObserver((list) => void (scavenges.count += list.getEntries().length)).observe({ entryTypes: ['gc'] });

const upstream = await startBareServer(new AbortController().signal);
const identity = await startTestIdentity();
const upstreams = [
  { service: 'iam', url: identity.url, urls: [identity.url], routes: [] },
  { service: 'masterdata', url: upstream.url, urls: [upstream.url], routes: [{ prefix: '/api/v1/labels' }] },
];
const authorization = `Bearer ${await identity.token(identity.user())}`;

interface LoadRun { requests: number }
/** autocannon in its own process, so that this process's CPU is the gateway's alone. */
function load(url: string, durationS: number): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AUTOCANNON, '-c', '10', '-d', String(durationS), '-H', `authorization=${authorization}`, '--json', url], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', () => {
      try {
        const result = JSON.parse(out) as { requests: { total: number }; non2xx: number };
        if (result.non2xx > 0) reject(new Error(`${url}: ${result.non2xx} non-2xx answers`));
        else resolve({ requests: result.requests.total });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

async function gatewayOf(checkout: string) {
  const { buildApp } = (await import(path.join(path.resolve(checkout), 'services/gateway/src/app.ts'))) as typeof GatewayApp;
  const credentials = testCredentials('gateway');
  const app = await buildApp({ logger: logger(), upstreams, credentials, authSources: remoteAuthSources(identity.url, { credentials }), settings: { rateLimit: { perIp: 1e9, perUser: 1e9, windowMs: 60_000 } } });
  const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}${PATH}`;
  const check = await fetch(url, { headers: { authorization } });
  if (check.status !== 200) throw new Error(`${checkout}: GET ${PATH} answered ${check.status} ${await check.text()}`);
  return { name: checkout, app, url, cpuPerRequest: [] as number[], scavengesPer1000: [] as number[], perSecond: [] as number[] };
}

const sides = [await gatewayOf(checkoutA), await gatewayOf(checkoutB)];
for (const side of sides) await load(side.url, 3); // warm-up: JIT, pooled connections
for (let round = 0; round < Number(rounds); round++) {
  for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
    const cpu = process.cpuUsage();
    const scavenged = scavenges.count;
    const { requests } = await load(side.url, Number(seconds));
    const used = process.cpuUsage(cpu);
    side.cpuPerRequest.push((used.user + used.system) / requests);
    side.scavengesPer1000.push(((scavenges.count - scavenged) * 1000) / requests);
    side.perSecond.push(requests / Number(seconds));
  }
}
const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
for (const side of sides) {
  console.log(`${side.name}: CPU per request median ${median(side.cpuPerRequest).toFixed(0)} µs [${side.cpuPerRequest.map((v) => v.toFixed(0)).join(' ')}], GC events per 1,000 requests median ${median(side.scavengesPer1000).toFixed(1)}, requests/s median ${median(side.perSecond).toFixed(0)} (noisy)`);
}
console.log(`B/A CPU per round: ${sides[0]!.cpuPerRequest.map((a, i) => (sides[1]!.cpuPerRequest[i]! / a).toFixed(2)).join(' ')}`);
for (const side of sides) await side.app.close();
await identity.close();
await upstream.stop();
