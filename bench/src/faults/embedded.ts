/**
 * The embedded fault run: `npm run test:faults`. Starts the system as `npm start` does (fresh data
 * directory, free loopback ports), drives steady load through the gateway (label and order
 * creates, reads), and injects in turn: a SIGKILL of the postmaster, a storm of terminated
 * backends, and a 20 s SIGSTOP of core. For each it prints the responses by status, the time
 * until throughput is steady again, and a ledger check: every create acknowledged with a 2xx
 * exists exactly once, and nothing was created that the generator was told failed. About 4
 * minutes; stops everything it started, also on failure or Ctrl-C.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import pg from 'pg';
import { BENCH_ADMIN, buildDist, RunningSystem } from '../lib/system.ts';
import { makeDataDir } from '../lib/temp.ts';
import { loggedCauses } from './logs.ts';
import { describeWindow, now, sleep, windowFigures, type FaultWindow, type Outcome } from './timeline.ts';

const WORKERS = 6;
/** Seconds of load before the first fault, and the baseline window before each fault. */
const WARMUP_S = 10;
const BASELINE_S = 10;
/** How long each fault is watched for recovery before the next. */
const OBSERVE_S = 40;
const FREEZE_S = 20;
const REQUEST_TIMEOUT_MS = 15_000;

interface Create {
  readonly kind: 'label' | 'order';
  readonly marker: string;
  readonly sentAt: number;
  outcome?: Outcome;
  answeredAt?: number;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

/** Faults of the embedded run, in order: all three by default. */
export const EMBEDDED_FAULTS = ['postmaster', 'storm', 'freeze'];

/** Runs the embedded fault run with these faults (repeats allowed); sets process.exitCode. */
export async function runEmbeddedFaults(selected: readonly string[], abort: AbortController): Promise<void> {
  const began = now();

  log('Building dist/ …');
  await buildDist();
  const dir = await makeDataDir('faults');
  process.env.JWT_ACCESS_TTL_SECONDS = '3600'; // one sign-in for the whole run
  const { system, readyMs } = await RunningSystem.start(dir.path, abort.signal);
  log(`System ready in ${(readyMs / 1000).toFixed(1)} s (data in ${dir.path})`);
  const gateway = system.url('gateway');
  const login = await fetch(`${gateway}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(BENCH_ADMIN),
  });
  if (login.status !== 200) throw new Error(`sign-in failed: HTTP ${login.status}`);
  const headers = { authorization: `Bearer ${((await login.json()) as { accessToken: string }).accessToken}`, 'content-type': 'application/json' };

  // The load: every response is recorded with its time; creates carry a unique marker.
  const responses: { at: number; outcome: Outcome }[] = [];
  const creates: Create[] = [];
  const failedRequests: string[] = [];
  const run = Date.now().toString(36).toUpperCase().slice(-4);
  let counter = 0;
  let loading = true;
  const request = async (method: string, url: string, body?: unknown): Promise<Outcome> => {
    try {
      const response = await fetch(`${gateway}${url}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      if (response.status >= 500 && response.status !== 503) failedRequests.push(`${response.status} ${method} ${url} ${response.headers.get('x-request-id') ?? ''}`);
      return response.status;
    } catch (error) {
      return (error as Error).name === 'TimeoutError' ? 'timeout' : 'network';
    }
  };
  const worker = async (index: number) => {
    for (let i = 0; loading; i++) {
      const pick = (i + index) % 5;
      let outcome: Outcome;
      if (pick === 0) {
        const create: Create = { kind: 'label', marker: `F${run}${(counter++).toString(36).toUpperCase()}`.slice(0, 10), sentAt: now() };
        creates.push(create);
        outcome = create.outcome = await request('POST', '/api/v1/labels', { code: create.marker, label: 'Fault run', display_name: 'Fault run' });
        create.answeredAt = now();
      } else if (pick === 1) {
        const create: Create = { kind: 'order', marker: `fault-${run}-${counter++}`, sentAt: now() };
        creates.push(create);
        outcome = create.outcome = await request('POST', '/api/v1/orders', { item_name: create.marker, department_code: 'LAB' });
        create.answeredAt = now();
      } else {
        outcome = await request('GET', pick % 2 === 0 ? '/api/v1/labels?limit=20' : '/api/v1/orders?limit=20');
      }
      responses.push({ at: now(), outcome });
      if (typeof outcome !== 'number' || outcome >= 500) await sleep(50); // as a polite client would
    }
  };
  const workers = Array.from({ length: WORKERS }, (_, i) => worker(i));

  const superuser = {
    host: '127.0.0.1',
    port: system.ports.postgres,
    user: 'postgres',
    password: (await readFile(path.join(dir.path, 'postgres/superuser-password'), 'utf8')).trim(),
  };
  const faults: FaultWindow[] = [];
  const exitsBefore = () => (system.output().match(/✗ \S+ exited \(/g) ?? []).length;

  try {
    log(`Load: ${WORKERS} workers through the gateway (creates of labels and orders, reads); warming up ${WARMUP_S} s`);
    await sleep((WARMUP_S + BASELINE_S) * 1000);

    const postmasterKill = async () => {
      const window: FaultWindow = { name: 'postmaster SIGKILL', startedAt: now(), endedAt: 0, note: '' };
      faults.push(window);
      const exits = exitsBefore();
      const postmaster = Number((await readFile(path.join(dir.path, 'postgres/pgdata/postmaster.pid'), 'utf8')).split('\n')[0]);
      process.kill(postmaster, 'SIGKILL');
      const restartedLine = /✓ PostgreSQL restarted in ([\d.]+) s/g;
      const before = [...system.output().matchAll(restartedLine)].length;
      let restarted: RegExpMatchArray | undefined;
      while (!restarted && now() - window.startedAt < OBSERVE_S * 1000 && !abort.signal.aborted) {
        restarted = [...system.output().matchAll(restartedLine)][before];
        await sleep(100);
      }
      await sleep(Math.max(0, window.startedAt + OBSERVE_S * 1000 - now()));
      window.endedAt = now();
      window.note = `PostgreSQL ${restarted ? `restarted by the supervisor in ${restarted[1]} s` : 'NOT restarted'}; service exits: ${exitsBefore() - exits}`;
    };

    // Every client backend terminated, every 250 ms for 5 s.
    const storm = async () => {
      const window: FaultWindow = { name: 'backend-termination storm (5 s)', startedAt: now(), endedAt: 0, note: '' };
      faults.push(window);
      const exits = exitsBefore();
      const admin = new pg.Client({ ...superuser, database: 'postgres' });
      admin.on('error', () => undefined);
      await admin.connect();
      let terminated = 0;
      try {
        while (now() - window.startedAt < 5_000) {
          const { rowCount } = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`);
          terminated += rowCount ?? 0;
          await sleep(250);
        }
      } finally {
        await admin.end();
      }
      await sleep(Math.max(0, window.startedAt + OBSERVE_S * 1000 - now()));
      window.endedAt = now();
      window.note = `${terminated} backends terminated; service exits: ${exitsBefore() - exits}`;
    };

    // core frozen (SIGSTOP) for 20 s, then SIGCONT unless the supervisor has replaced it.
    const freeze = async () => {
      const window: FaultWindow = { name: `core SIGSTOP (${FREEZE_S} s)`, startedAt: now(), endedAt: 0, note: '' };
      faults.push(window);
      const core = system.servicePids().get('core')!;
      const exits = exitsBefore();
      process.kill(core, 'SIGSTOP');
      const noticed = await system.waitFor(new RegExp(`✗ core \\(pid ${core}\\) has not answered its liveness check for ([\\d.]+) s`), abort.signal, FREEZE_S * 1000).catch(() => undefined);
      await sleep(Math.max(0, window.startedAt + FREEZE_S * 1000 - now()));
      if (!noticed) process.kill(core, 'SIGCONT');
      await sleep(Math.max(0, window.startedAt + OBSERVE_S * 1000 - now()));
      window.endedAt = now();
      window.note = noticed
        ? `the supervisor killed it after ${noticed.match[1]} s without a liveness answer and restarted it (service exits: ${exitsBefore() - exits}, the killed one included)`
        : 'NOT noticed by the supervisor; resumed with SIGCONT';
    };

    const byName: Record<string, () => Promise<void>> = { postmaster: postmasterKill, storm, freeze };
    for (const name of selected) await byName[name]!();
  } finally {
    loading = false;
    await Promise.all(workers);
  }

  // Let events settle, then compare what the generator was told with what the databases hold.
  await sleep(2_000);
  const counts = await storedCounts(superuser, run);
  await system.stop();
  const causes = await loggedCauses(path.join(dir.path, 'logs'), failedRequests);
  await dir.remove();

  log('');
  log(`Fault run ${run}: ${responses.length} responses, ${creates.length} creates, ${((now() - began) / 1000).toFixed(0)} s in all; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${availableParallelism()} CPUs`);
  for (const [index, window] of faults.entries()) {
    log('');
    for (const line of describeWindow(index, window, windowFigures(responses, window, BASELINE_S))) log(line);
    log(`   ledger of the creates answered in this window: ${ledger(creates.filter((c) => c.answeredAt! >= window.startedAt && c.answeredAt! < window.endedAt), counts)}`);
  }
  log('');
  log(`Whole run ledger: ${ledger(creates, counts)}`);
  if (failedRequests.length > 0) {
    log(`Responses 5xx other than 503 (status, request, request id) and what the services logged for them:`);
    for (const line of failedRequests.slice(0, 20)) log(`   ${line}${causes.get(line.split(' ').at(-1)!) ? `\n      ${causes.get(line.split(' ').at(-1)!)}` : ''}`);
  }
  const problems = creates.filter((c) => isAcked(c) && (counts.get(c.marker) ?? 0) !== 1).length + creates.filter((c) => isRefused(c) && (counts.get(c.marker) ?? 0) > 0).length;
  process.exitCode = problems > 0 ? 1 : 0;
}

const isAcked = (c: Create) => typeof c.outcome === 'number' && c.outcome >= 200 && c.outcome < 300;
// Refused before any effect: a 4xx, or a 503 (the dependency was down). A 500/502/504, a timeout
// or a reset connection leaves the outcome unknown (the write may have committed).
const isRefused = (c: Create) => typeof c.outcome === 'number' && ((c.outcome >= 400 && c.outcome < 500) || c.outcome === 503);

function ledger(creates: readonly Create[], counts: ReadonlyMap<string, number>): string {
  const acked = creates.filter(isAcked);
  const missing = acked.filter((c) => (counts.get(c.marker) ?? 0) === 0).length;
  const duplicated = acked.filter((c) => (counts.get(c.marker) ?? 0) > 1).length;
  const refused = creates.filter(isRefused);
  const refusedButStored = refused.filter((c) => (counts.get(c.marker) ?? 0) > 0).length;
  const unknown = creates.filter((c) => !isAcked(c) && !isRefused(c));
  const unknownStored = unknown.filter((c) => (counts.get(c.marker) ?? 0) > 0).length;
  const verdict = missing === 0 && duplicated === 0 && refusedButStored === 0 ? 'OK' : 'FAILED';
  return `${verdict}: ${acked.length} acknowledged (${missing} missing, ${duplicated} duplicated); ${refused.length} refused (${refusedButStored} stored anyway); ` +
    `${unknown.length} with unknown outcome (${unknownStored} stored)`;
}

// Rows carrying this run's markers, by marker.
async function storedCounts(superuser: pg.ClientConfig, run: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const [database, query] of [
    ['masterdata', `SELECT code AS marker, count(*)::int AS n FROM masterdata.labels WHERE code LIKE 'F${run}%' GROUP BY code`],
    ['core', `SELECT item_name AS marker, count(*)::int AS n FROM core.orders WHERE item_name LIKE 'fault-${run}-%' GROUP BY item_name`],
  ] as const) {
    const client = new pg.Client({ ...superuser, database });
    await client.connect();
    try {
      for (const row of (await client.query<{ marker: string; n: number }>(query)).rows) counts.set(row.marker, row.n);
    } finally {
      await client.end();
    }
  }
  return counts;
}

