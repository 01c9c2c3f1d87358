import type { Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { freePort, useTestDatabase } from '@archipelago/platform/testing';
import { testCredentials, testCredentialsEnv, testOperatorKey } from '@archipelago/platform/testing/credentials';
import { buildIam } from '../../../services/iam/src/app.ts';
import type { IamDatabase } from '../../../services/iam/src/database.ts';
import { iam } from '../src/commands/iam.ts';

describe('archipelago iam rotate-keys', async () => {
  const registry = loadRegistry(undefined, {});
  const database = await useTestDatabase('iam');
  const app = await buildIam({ db: database.db as Kysely<IamDatabase>, logger: false, credentials: testCredentials('iam') });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  afterAll(() => app.close());

  it('adds a signing key to the running IAM; the old one stays published', async () => {
    const kids = async () => ((await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    const before = await kids();
    const lines: string[] = [];
    await iam(registry, 'rotate-keys', { IAM_URL: url, OPERATOR_PRIVATE_KEY: testOperatorKey() }, (line) => lines.push(line));
    const after = await kids();
    expect(after).toHaveLength(before.length + 1);
    expect(after).toEqual(expect.arrayContaining(before) as unknown);
    const added = after.find((k) => !before.includes(k))!;
    expect(lines[0]).toContain(added);
  });

  it('is refused without the operator\'s key', async () => {
    const coreKey = testCredentialsEnv('core').SERVICE_PRIVATE_KEY!;
    await expect(iam(registry, 'rotate-keys', { IAM_URL: url, OPERATOR_PRIVATE_KEY: coreKey }, () => undefined)).rejects.toThrow(/refused .* HTTP 401/);
  });

  it('says how to fix it when IAM is not running', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    await expect(iam(registry, 'rotate-keys', { IAM_URL: nowhere, OPERATOR_PRIVATE_KEY: testOperatorKey() }, () => undefined)).rejects.toThrow(/Cannot reach IAM at .* Start it first/);
  });
});
