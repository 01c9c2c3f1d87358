import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadRegistry } from '@archipelago/registry';
import { migrateService, openDatabases } from '../databases.ts';
import { freePort } from '../net.ts';
import type { TestCluster } from './cluster.ts';

// One embedded PostgreSQL per test project (vitest.config.ts: `main`, and `reporting` for the
// files that replicate). Every service database is provisioned and migrated
// once here and then used as a template: each test file gets fresh copies in milliseconds.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `archipelago-test-${project.name}-`));
  const registry = loadRegistry(undefined, {});
  const opened = await openDatabases(registry.services, {
    env: {},
    embedded: { dataDir, port: await freePort(), durability: 'ephemeral' },
  });
  for (const database of opened.byService.values()) await migrateService(database);
  const cluster = opened.cluster!;
  const superuser = cluster.connection('postgres');
  const provided: TestCluster = {
    project: project.name,
    dataDir,
    port: cluster.port,
    superuserPassword: String(superuser.password),
    databases: Object.fromEntries([...opened.byService].map(([key, db]) => [key, { appUrl: db.appUrl, ownerUrl: db.ownerUrl }])),
  };
  project.provide('archipelagoCluster', provided);
  return async () => {
    await opened.close();
    await rm(dataDir, { recursive: true, force: true });
  };
}
