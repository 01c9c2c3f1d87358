import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envPrefix, loadRegistry } from '@archipelago/registry';
import { serviceCredentialsFromEnv } from '@archipelago/platform/internal-auth';
import { cliKeyring, credentialsCommand, operatorCredentials } from '../src/credentials.ts';
import { serviceEnvironment } from '../src/stack.ts';

// `.env` lines back into variables, as a shell or compose reads them.
const parse = (lines: string[]) => Object.fromEntries(lines.filter((l) => !l.startsWith('#')).map((l) => {
  const at = l.indexOf('=');
  return [l.slice(0, at), l.slice(at + 1).replace(/^'|'$/g, '')];
}));

describe('archipelago credentials env', async () => {
  const registry = loadRegistry(undefined, {});
  const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-credentials-'));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const local = { ARCHIPELAGO_DATA_DIR: dir };
  const print = async (principal: string | undefined, env: Record<string, string | undefined> = local) => {
    const lines: string[] = [];
    expect(await credentialsCommand(registry, principal, env, (line) => lines.push(line))).toBe(0);
    return parse(lines);
  };

  it('prints one service\'s own key and every public key, and nothing of another service', async () => {
    const core = await print('core');
    expect(Object.keys(core)).toEqual(['SERVICE_PRIVATE_KEY', 'SERVICE_PUBLIC_KEYS']);
    const iam = await print('iam');
    expect(iam.SERVICE_PRIVATE_KEY).not.toBe(core.SERVICE_PRIVATE_KEY);
    expect(iam.SERVICE_PUBLIC_KEYS).toBe(core.SERVICE_PUBLIC_KEYS);
    // A process on another machine, given these lines only, calls and is verified.
    expect(await serviceCredentialsFromEnv('iam', iam).verify(await serviceCredentialsFromEnv('core', core).token('iam'))).toBe('core');
  });

  it('prints the operator\'s key, which the CLI signs with', async () => {
    const operator = await print('operator');
    const iam = serviceCredentialsFromEnv('iam', await print('iam'));
    expect(await iam.verify(await (await operatorCredentials(registry, operator)).token('iam'))).toBe('operator');
    expect(await iam.verify(await (await operatorCredentials(registry, local)).token('iam'))).toBe('operator');
  });

  it('prints every key as .env lines, which the CLI and services then read from the environment', async () => {
    const all = await print(undefined);
    expect(Object.keys(all)).toEqual(['SERVICE_PUBLIC_KEYS', ...registry.services.map((s) => `${envPrefix(s.key)}_SERVICE_PRIVATE_KEY`), 'OPERATOR_PRIVATE_KEY']);
    // With the keys in the environment the data directory is not consulted (here: one that does not exist).
    const elsewhere = { ...all, ARCHIPELAGO_DATA_DIR: path.join(dir, 'not-here') };
    expect(await print('core', elsewhere)).toEqual(await print('core'));
  });

  it('gives a service process its own private key only, whatever the CLI\'s environment holds', async () => {
    const all = await print(undefined);
    const keyring = await cliKeyring(registry, local);
    const env = serviceEnvironment(registry, registry.service('core'), undefined, { ...all, PATH: '/usr/bin' }, keyring.environmentOf('core'));
    expect(env.SERVICE_PRIVATE_KEY).toBe(all.CORE_SERVICE_PRIVATE_KEY);
    expect(env.SERVICE_PUBLIC_KEYS).toBe(all.SERVICE_PUBLIC_KEYS);
    const keys = Object.values(env).filter((value) => value !== undefined && Object.values(all).includes(value) && value !== all.SERVICE_PUBLIC_KEYS);
    expect(keys).toEqual([all.CORE_SERVICE_PRIVATE_KEY]);
  });
});
