import path from 'node:path';
import { envPrefix, type Registry, type Service } from '@archipelago/registry';
import { EXIT_CONFIG, StartupError } from '@archipelago/platform/startup';
import { migrateService, seedService } from '@archipelago/platform/databases';
import { assertPortFree } from '@archipelago/platform/embedded';
import { cliKeyring } from '../credentials.ts';
import { provisionReporting, startHeartbeats } from './reporting.ts';
import { awaitLookups } from './sync.ts';
import { instancesOf, localSettings, openLocalDatabases, privateDirectory, serviceCommand, serviceEnvironment } from '../stack.ts';
import { createSupervisor, type Supervisor, type SupervisorEvent } from '../supervisor.ts';

/**
 * `archipelago start [--service key]…`: PostgreSQL (embedded unless configured), migrations and
 * seeds, then every service under a supervisor. Resolves when the system has shut down; Ctrl-C
 * at any moment stops whatever has started, services first and PostgreSQL last. In the
 * distributed topology (ARCHIPELAGO_TOPOLOGY) each service has its own PostgreSQL and runs its
 * `replicas` instances. `given` is the caller's interrupt when it has more to stop afterwards.
 */
export async function start(
  registry: Registry,
  keys: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
  given?: Interrupt,
): Promise<void> {
  const began = Date.now();
  const selected: Service[] = keys.length > 0 ? keys.map((k) => registry.service(k)) : [...registry.services];
  const settings = localSettings(env);
  for (const key of Object.keys(settings.instances)) registry.service(key); // an unknown key fails here
  const instances = selected.flatMap((service) => instancesOf(service, settings.topology, settings.instances));
  for (const instance of instances) await assertPortFree(instance.port, `service "${instance.key}"`, `${envPrefix(instance.service.key)}_PORT`);

  const interrupt = given ?? listenForInterrupt();
  let supervisor: Supervisor | undefined;
  let stopHeartbeats = () => undefined as void;
  const databases = await openLocalDatabases(registry, selected, env, say);
  try {
    for (const { cluster, dataDir, services } of databases.clusters) {
      const holds = settings.topology === 'distributed' ? ` for ${services.join(', ')}` : '';
      if (cluster.stoppedLeftover) say(`Stopped a PostgreSQL (pid ${cluster.stoppedLeftover}) left running by an earlier start that was killed.`);
      if (cluster.attached) say(`Using the PostgreSQL another Archipelago process runs on 127.0.0.1:${cluster.port}${holds}`);
      else say(`PostgreSQL ${cluster.created ? 'created and started' : 'started'} on 127.0.0.1:${cluster.port}${holds} (data in ${dataDir})`);
    }
    // Services whose schema this start changed (a first start, an upgrade): their lookups may be empty or stale.
    const migrated = new Set<string>();
    for (const database of databases.byService.values()) {
      if (interrupt.received()) break;
      // Each run is one transaction: an interrupt waits for it rather than leaving half of it.
      const applied = await migrateService(database);
      if (applied.length > 0) migrated.add(database.service.key);
      await seedService(database);
      say(`  ${database.service.key}: ${applied.length > 0 ? `applied ${applied.join(', ')}` : 'schema up to date'}; seeded`);
    }
    if (!interrupt.received()) await provisionReporting(databases, env, say);
    stopHeartbeats = startHeartbeats(databases, env, say);
    if (!interrupt.received()) {
      const keyring = await cliKeyring(registry, env);
      const logDir = path.join(settings.dataDir, 'logs');
      await privateDirectory(logDir);
      supervisor = createSupervisor(
        instances.map((instance) => ({
          key: instance.key,
          args: serviceCommand(instance.service),
          env: serviceEnvironment(registry, instance.service, databases.byService.get(instance.service.key)?.appUrl, env, keyring.environmentOf(instance.service.key), {
            topology: settings.topology,
            index: instance.index,
            instances: settings.instances,
          }),
          readyUrl: `http://127.0.0.1:${instance.port}/health/ready`,
          liveUrl: `http://127.0.0.1:${instance.port}/health/live`,
          logFile: path.join(logDir, `${instance.key}.log`),
        })),
        { noRestartExitCode: EXIT_CONFIG, livenessTimeoutMs: settings.livenessTimeoutMs, onEvent: (event) => report(event, say, new Map(instances.map((i) => [i.key, i.port]))) },
      );
      const startup = supervisor.start();
      startup.catch(() => undefined); // an interrupt during start-up makes it fail; that is expected
      const first = await Promise.race([startup.then(() => 'ready' as const), interrupt.signal]).catch((error: unknown) => {
        throw new StartupError((error as Error).message, { cause: error });
      });
      if (first === 'ready') {
        const running = (key: string) => selected.some((s) => s.key === key);
        // Only where the schema just changed: a warm start's lookups are already full, and a drift check reads every master row.
        const keepers = instances.filter((i) => i.index === 0 && migrated.has(i.service.key) && (i.service.lookups ?? []).length > 0 && i.service.lookups!.every((l) => running(l.from))).map((i) => ({ service: i.service, url: `http://127.0.0.1:${i.port}` }));
        const waited = Date.now();
        const behind = await awaitLookups(keepers, env, LOOKUPS_TIMEOUT_MS, interruptedSignal(interrupt));
        if (keepers.length > 0 && behind.length === 0) say(`  ✓ lookups equal to their masters in ${((Date.now() - waited) / 1000).toFixed(1)} s (${keepers.map((k) => k.service.key).join(', ')})`);
        if (behind.length > 0 && !interrupt.received()) say(`  ! lookups not yet equal to their masters after ${LOOKUPS_TIMEOUT_MS / 1000} s: ${behind.join(', ')} (\`npm run cli -- sync drift\` shows the rows)`);
        const gateway = selected.find((s) => s.key === 'gateway');
        const processes = instances.length > selected.length ? ` (${instances.length} processes)` : '';
        say(`All ${selected.length} service${selected.length === 1 ? '' : 's'}${processes} ready in ${((Date.now() - began) / 1000).toFixed(1)} s. Logs: ${logDir}/<service>.log`);
        if (gateway) say(`Try: curl http://127.0.0.1:${gateway.port}/health    (Ctrl-C stops everything)`);
      }
    }
    say(`\n${await interrupt.signal}: stopping…`);
  } finally {
    stopHeartbeats();
    await supervisor?.stop();
    await databases.close();
    if (!given) interrupt.dispose();
  }
  say('Stopped.');
}

/** How long `start` waits, once every service is up, for the lookups to fill before it says "ready" anyway. */
const LOOKUPS_TIMEOUT_MS = 30_000;

function interruptedSignal(interrupt: Interrupt): AbortSignal {
  const controller = new AbortController();
  void interrupt.signal.then(() => controller.abort());
  return controller.signal;
}

/** SIGINT/SIGTERM as a promise, taken over from Node's default (exit at once, orphaning children). */
export interface Interrupt {
  readonly signal: Promise<NodeJS.Signals>;
  received(): boolean;
  dispose(): void;
}

/** Listens for SIGINT/SIGTERM from now until dispose(). */
export function listenForInterrupt(): Interrupt {
  let received: NodeJS.Signals | undefined;
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (s) => {
      received ??= s;
      resolve(s);
    };
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal,
    received: () => received !== undefined,
    dispose() {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    },
  };
}

function report(event: SupervisorEvent, say: (line: string) => void, ports: ReadonlyMap<string, number>): void {
  switch (event.kind) {
    case 'ready': {
      say(`  ✓ ${event.key.padEnd(13)} http://127.0.0.1:${ports.get(event.key)}  ready in ${(event.ms / 1000).toFixed(1)} s (pid ${event.pid})`);
      return;
    }
    case 'exited':
      say(`  ✗ ${event.key} exited (${event.signal ?? `code ${event.code}`}); restarting in ${event.restartInMs / 1000} s (restart ${event.attempt}). Last log lines:\n${event.logTail}`);
      return;
    case 'unresponsive':
      say(`  ✗ ${event.key} (pid ${event.pid}) has not answered its liveness check for ${(event.ms / 1000).toFixed(1)} s; killing it (SIGKILL) to restart it`);
      return;
    case 'gave-up':
      say(`  ✗ ${event.key} stopped and will not be restarted: ${event.reason}. Last log lines:\n${event.logTail}`);
  }
}
