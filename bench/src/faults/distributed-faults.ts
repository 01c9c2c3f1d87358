import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { processTree, readStat, tcpSocketOwner } from '../lib/proc.ts';
import type { RunningSystem } from '../lib/system.ts';
import { query, type Databases } from './check.ts';
import { now, sleep } from './timeline.ts';

/** What a fault may touch: the system's processes and output, and each service's cluster. */
export interface FaultContext {
  readonly system: RunningSystem;
  readonly databases: Databases;
  readonly signal: AbortSignal;
  /** The fault's window: whatever should come back must do so within it. */
  readonly observeMs: number;
}

/** Injects a fault and resolves with a note on what it did and what came back (within the window). */
export interface Fault {
  inject(context: FaultContext): Promise<string>;
}

// The services whose producer relay is killed: core runs twice, so its other instance takes over.
const PRODUCER = 'core';
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// Waits (within the window) until `probe` returns something; the time it took, or undefined.
async function until<T>(context: FaultContext, probe: () => T | undefined | Promise<T | undefined>, startedAt = now()): Promise<{ value: T; ms: number } | undefined> {
  while (now() - startedAt < context.observeMs && !context.signal.aborted) {
    const value = await probe();
    if (value !== undefined) return { value, ms: now() - startedAt };
    await sleep(100);
  }
  return undefined;
}

const instancesOf = (system: RunningSystem, service: string) => [...system.servicePids()].filter(([key]) => key === service || key.startsWith(`${service}-`));

// The instance of `service` holding its relay's leader lock: the database session named `<service>-relay` with a granted advisory lock, and the process with its client end.
async function relayLeader(context: FaultContext, service: string): Promise<[key: string, pid: number] | undefined> {
  const sessions = await query<{ client_port: number }>(
    context.databases.get(service)!,
    `SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`,
    [`${service}-relay`],
  ).catch(() => []);
  const instances = instancesOf(context.system, service);
  for (const { client_port: port } of sessions) {
    const owner = tcpSocketOwner(port, instances.map(([, pid]) => pid));
    if (owner !== undefined) return instances.find(([, pid]) => pid === owner);
  }
  // A session no live instance owns is the killed leader's, until its backend notices (or a restarted instance's not printed yet).
  return undefined;
}

// SIGKILL, then the supervisor's restart as the CLI prints it (a new pid for the same key).
async function killService(context: FaultContext, key: string, pid: number, what: string): Promise<string> {
  const startedAt = now();
  process.kill(pid, 'SIGKILL');
  const back = await until(context, () => {
    const current = context.system.servicePids().get(key);
    return current !== undefined && current !== pid ? current : undefined;
  }, startedAt);
  return `${what} ${key} (pid ${pid}) SIGKILLed; ${back ? `the supervisor had it ready again in ${seconds(back.ms)} (pid ${back.value})` : 'NOT restarted within the window'}`;
}

const restartLines = (system: RunningSystem, pattern: RegExp) => [...system.output().matchAll(pattern)];

// Kills a broker's process, then waits for the CLI's "✓ <name> restarted in … s".
async function killBroker(context: FaultContext, name: 'Redis' | 'RabbitMQ'): Promise<string> {
  const pid = context.system.brokerPid(name);
  if (pid === undefined) throw new Error(`no ${name} pid in the CLI's output`);
  const restarted = new RegExp(`✓ ${name} restarted in ([\\d.]+) s \\(pid (\\d+)\\)`, 'g');
  const before = restartLines(context.system, restarted).length;
  // rabbitmq-server is a shell script waiting for its Erlang VM: the VM is the broker.
  const target = processTree(pid).find((p) => readStat(p)?.comm.startsWith('beam')) ?? pid;
  const startedAt = now();
  process.kill(target, 'SIGKILL');
  const back = await until(context, () => restartLines(context.system, restarted)[before], startedAt);
  return `${name} (pid ${target}) SIGKILLed; ${back ? `the CLI started it again on the same port, answering after ${seconds(back.ms)} (pid ${back.value[2]})` : 'NOT restarted within the window'}`;
}

/** The faults of the distributed run, by name, in the order of the full run. */
export const FAULTS: Record<string, Fault> = {
  'relay-leader': {
    async inject(context) {
      const leader = await relayLeader(context, PRODUCER);
      if (!leader) return `no instance of ${PRODUCER} holds its relay lock: nothing killed`;
      // The takeover is watched from the kill on, while the supervisor restarts the killed instance.
      const startedAt = now();
      const [note, next] = await Promise.all([
        killService(context, leader[0], leader[1], `${PRODUCER}'s relay leader`),
        until(context, async () => {
          const current = await relayLeader(context, PRODUCER);
          return current && current[1] !== leader[1] ? current : undefined;
        }, startedAt),
      ]);
      return `${note}; relay leadership held again by ${next ? `${next.value[0]} ${seconds(next.ms)} after the kill` : 'NO instance within the window'}`;
    },
  },
  consumer: {
    async inject(context) {
      // The instance not relaying: a pure consumer of masterdata's events (its lookups).
      const leader = await relayLeader(context, PRODUCER);
      const [key, pid] = instancesOf(context.system, PRODUCER).find(([, p]) => p !== leader?.[1])!;
      return killService(context, key, pid, 'consumer');
    },
  },
  notification: {
    inject(context) {
      const [key, pid] = instancesOf(context.system, 'notification')[0]!;
      return killService(context, key, pid, 'notification instance (consumer of orders, holder of sockets)');
    },
  },
  rabbitmq: { inject: (context) => killBroker(context, 'RabbitMQ') },
  redis: { inject: (context) => killBroker(context, 'Redis') },
  postgres: {
    // A restart of one service's cluster: fast shutdown (SIGINT to the postmaster), then the CLI starts it again.
    async inject(context) {
      const config = context.databases.get(PRODUCER)!;
      const postmaster = Number((await readFile(path.join(config.dataDir, 'pgdata/postmaster.pid'), 'utf8')).split('\n')[0]);
      const restarted = /✓ PostgreSQL restarted in ([\d.]+) s/g;
      const before = restartLines(context.system, restarted).length;
      const startedAt = now();
      process.kill(postmaster, 'SIGINT');
      const back = await until(context, () => restartLines(context.system, restarted)[before], startedAt);
      return `${PRODUCER}'s PostgreSQL (postmaster ${postmaster}) stopped (fast shutdown); ${back ? `started again by the CLI, ready ${seconds(back.ms)} after the stop` : 'NOT started again within the window'}`;
    },
  },
  storm: {
    // Every client backend of every cluster terminated, every 250 ms for 5 s.
    async inject(context) {
      const admins = [...context.databases.values()].map((config) => {
        const client = new pg.Client({ ...config, database: 'postgres' });
        client.on('error', () => undefined);
        return client;
      });
      await Promise.all(admins.map((client) => client.connect()));
      let terminated = 0;
      const startedAt = now();
      try {
        while (now() - startedAt < 5_000) {
          for (const client of admins) {
            const { rowCount } = await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`);
            terminated += rowCount ?? 0;
          }
          await sleep(250);
        }
      } finally {
        await Promise.all(admins.map((client) => client.end().catch(() => undefined)));
      }
      return `${terminated} backends terminated across ${admins.length} clusters in 5 s`;
    },
  },
};

/**
 * Waits until everything a fault took away is back: the gateway sees every instance of every
 * service ready, and an instance of core leads its relay. The time it took, or undefined.
 */
export async function waitWhole(context: FaultContext, gateway: string, timeoutMs: number): Promise<number | undefined> {
  const whole = async () => {
    const health = await fetch(`${gateway}/health`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.json() as Promise<{ status: string; services: Record<string, { instances?: { ready: number; of: number } }> }>, () => undefined);
    const everyInstance = health?.status === 'ready' && Object.values(health.services).every((s) => !s.instances || s.instances.ready === s.instances.of);
    return everyInstance && (await relayLeader(context, PRODUCER)) ? true : undefined;
  };
  return (await until({ ...context, observeMs: timeoutMs }, whole))?.ms;
}
