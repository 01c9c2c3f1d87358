import { envPrefix, type Registry } from '@archipelago/registry';
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

/** `.env.example`: every variable the system reads, with safe development values. */
export function envExample(registry: Registry): string {
  const lines = [
    generatedHeader('#', 'environment').trimEnd(),
    '# Copy to .env. Nothing here is needed for `npm start` with the embedded PostgreSQL.',
    '',
    '# Embedded PostgreSQL (used by every service without a <KEY>_DATABASE_URL)',
    '# ARCHIPELAGO_DATA_DIR=.data',
    '# ARCHIPELAGO_PG_PORT=5454',
    '# ARCHIPELAGO_LIVENESS_TIMEOUT_MS=10000   a service not answering /health/live this long is killed and restarted (0: never)',
    'LOG_LEVEL=info',
    '',
    '# Ports (defaults from the registry)',
    ...registry.services.map((s) => `# ${envPrefix(s.key)}_PORT=${s.port}`),
    '',
    '# External databases: set a service\'s URL to use it instead of the embedded cluster.',
    '# <KEY>_DATABASE_URL connects as the app role; <KEY>_OWNER_DATABASE_URL (optional) as the owner, for migrations.',
    ...registry.services
      .filter((s) => s.stateful)
      .map((s) => `# ${envPrefix(s.key)}_DATABASE_URL=postgresql://${s.database}_app:change-me@localhost:5433/${s.database}`),
    '',
    '# Identity (iam)',
    '# ADMIN_EMAIL=admin@example.com          first administrator, created by the seed',
    '# ADMIN_PASSWORD=                        unset: a random one, printed once and kept in .data/iam-admin-password.txt',
    '# JWT_ACCESS_TTL_SECONDS=600',
    '# JWT_PUBLISH_LEAD_SECONDS=60            a rotated key is published this long before it signs',
    '# IAM_SIGNING_KEY_SECRET=                set: private signing keys are stored AES-256-GCM encrypted',
    '# PASSWORD_RESET_URL=http://127.0.0.1:4110/reset-password?token=   npm start: the gateway\'s port',
    '# SMTP_URL=smtp://user:pass@mail.example.com:587   reset mail through SMTP (smtps:// for TLS); unset: local mailbox',
    '# MAIL_FROM=Archipelago <no-reply@localhost>',
    '# MAIL_DIR=.data/mail                    the local mailbox (0700, one 0600 file per message): npm run cli -- mail list',
    '',
    '# Gateway',
    '# CORS_ORIGINS=https://app.example.com   comma-separated; none by default',
    '# REDIS_URL=redis://localhost:6379       shared rate-limit store; in-memory when unset',
    '# RATE_LIMIT_PER_IP=1200',
    '# RATE_LIMIT_PER_USER=1200',
    '# RATE_LIMIT_WINDOW_MS=60000',
    '# GATEWAY_BODY_LIMIT=1048576',
    '# UPSTREAM_TIMEOUT_MS=10000',
    '',
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
    'RABBITMQ_PASSWORD=change-me-rabbitmq',
    '',
  ];
  return lines.join('\n');
}
