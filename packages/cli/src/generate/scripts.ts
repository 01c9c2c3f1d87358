import { envPrefix, type BackingService, type Registry } from '@archipelago/registry';
import { backingConfigSchemas, databaseConfigSchema, isDerived, platformConfigSchema, serviceConfigSchemaOf } from '@archipelago/platform/config';
import type { TObject } from 'typebox';
import { cliConfigSchema } from '../stack.ts';
import { passwordVariables } from '@archipelago/platform/provision';
import { principalsOf, privateKeyVariableOf } from '@archipelago/platform/internal-auth';
import { generatedHeader } from './header.ts';

/** `infra/start-dev.sh`: migrations and seeds of every service, in dependency order. */
export function startDevScript(registry: Registry): string {
  const stateful = registry.services.filter((s) => s.stateful);
  return [
    '#!/usr/bin/env bash',
    generatedHeader('#', 'development start-up: migrations and seeds').trimEnd(),
    '# Reads .env when present. With no <KEY>_DATABASE_URL set, services use the embedded PostgreSQL.',
    'set -euo pipefail',
    'cd "$(dirname "$0")/.."',
    'if [ -f .env ]; then set -a; . ./.env; set +a; fi',
    'node packages/cli/build.mjs',
    'cli=(node --enable-source-maps dist/packages/cli/src/main.mjs)',
    '',
    ...stateful.map((s) => `echo "==> ${s.key}: migrate and seed"\n"\${cli[@]}" db migrate --seed --service ${s.key}`),
    '',
  ].join('\n');
}

const BACKING_TITLES: Readonly<Record<BackingService, string>> = {
  redis: 'Redis',
  rabbitmq: 'RabbitMQ',
  objectStorage: 'Object storage',
  mail: 'Mail',
};

const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

// One commented line per variable the operator may set: its default (or an example) and what it does.
function variableLines(schema: TObject, listed: Set<string>): string[] {
  const lines: string[] = [];
  for (const [variable, property] of Object.entries(schema.properties)) {
    if (isDerived(property) || listed.has(variable)) continue;
    listed.add(variable);
    const options = property as { default?: unknown; examples?: unknown[]; description?: string };
    const value = options.default !== undefined && options.default !== '' ? text(options.default) : text(options.examples?.[0] ?? '');
    const assignment = `# ${variable}=${value}`;
    lines.push(options.description ? `${assignment.padEnd(40)} ${options.description}` : assignment);
  }
  return lines;
}

/** `.env.example`: every variable the system reads, derived from the services' config schemas. */
export function envExample(registry: Registry): string {
  const listed = new Set<string>();
  const section = (title: string, schema: TObject) => {
    const lines = variableLines(schema, listed);
    return lines.length > 0 ? [`# ${title}`, ...lines, ''] : [];
  };
  const backings = (Object.keys(BACKING_TITLES) as BackingService[]).filter((b) => registry.services.some((s) => s.uses?.includes(b)));
  const lines = [
    generatedHeader('#', 'environment').trimEnd(),
    '# Copy to .env. Nothing here is needed for `npm start` with the embedded PostgreSQL.',
    '# Each service reads the variables of its schema (registry/src/services.ts `config`, `uses`, `jobs`).',
    '',
    ...section('The CLI (npm start, db migrate --seed)', cliConfigSchema),
    ...section('Every service', platformConfigSchema),
    ...section('Every service with a database', databaseConfigSchema),
    '# Ports (defaults from the registry)',
    ...registry.services.map((s) => `# ${envPrefix(s.key)}_PORT=${s.port}`),
    '',
    '# External databases: set a service\'s URL to use it instead of the embedded cluster.',
    '# <KEY>_DATABASE_URL connects as the app role; <KEY>_OWNER_DATABASE_URL (optional) as the owner, for migrations.',
    ...registry.services
      .filter((s) => s.stateful)
      .map((s) => `# ${envPrefix(s.key)}_DATABASE_URL=postgresql://${s.database}_app:change-me@localhost:5433/${s.database}`),
    '',
    ...backings.flatMap((b) => section(`${BACKING_TITLES[b]} (${registry.services.filter((s) => s.uses?.includes(b)).map((s) => s.key).join(', ')})`, backingConfigSchemas[b])),
    ...registry.services.flatMap((s) => section(`${s.label} (${s.key})`, serviceConfigSchemaOf(s))),
    '# Service credentials (Ed25519 keys; see the README, "Service credentials"). `npm start` generates and keeps',
    '# them in .data/credentials.json. For docker compose or several machines, `npm run cli -- credentials env >> .env`',
    '# writes a set here; each service process then gets SERVICE_PRIVATE_KEY (its own key only) and SERVICE_PUBLIC_KEYS.',
    '# SERVICE_PUBLIC_KEYS=\'{"iam":"MCowBQYDK2VwAyEA…",…}\'   every principal\'s public key (not secret)',
    ...principalsOf(registry).map((p) => `# ${privateKeyVariableOf(p)}=`),
    '',
    '# docker compose (run from infra/: docker compose --env-file ../.env up)',
    'COMPOSE_PROJECT_NAME=archipelago',
    '# Superuser and role passwords, read by infra/init-databases.sql',
    'POSTGRES_PASSWORD=change-me-postgres',
    ...passwordVariables(registry).map((v) => `${v}=change-me-${v.toLowerCase().replace(/_password$/, '').replace(/_/g, '-')}`),
    ...(backings.includes('rabbitmq') ? ['RABBITMQ_PASSWORD=change-me-rabbitmq'] : []),
    '',
  ];
  return lines.join('\n');
}
