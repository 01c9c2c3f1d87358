import { describe, expect, it } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { ConfigError } from '@archipelago/platform';
import { instancesOf, localSettings, serviceCommand, serviceEnvironment } from '../src/stack.ts';

describe('a service process environment', () => {
  const registry = loadRegistry(undefined, {});
  const parent = {
    PATH: '/usr/bin',
    LOG_LEVEL: 'debug',
    NODE_OPTIONS: '--enable-source-maps',
    PGPASSWORD: 'superuser-secret',
    DATABASE_URL: 'postgresql://postgres:superuser-secret@localhost/postgres',
    IAM_DATABASE_URL: 'postgresql://iam_app:iam-secret@db/iam',
    CORE_OWNER_PASSWORD: 'owner-secret',
    JWT_SECRET: 'signing-secret',
    AWS_SECRET_ACCESS_KEY: 'cloud-secret',
  };

  it('carries its own database URL, its dependencies\' URLs and an allowlist of the parent\'s variables', () => {
    const env = serviceEnvironment(registry, registry.service('core'), 'postgresql://core_app:pw@127.0.0.1:5454/core', parent);
    expect(env).toEqual({
      PATH: '/usr/bin',
      LOG_LEVEL: 'debug',
      NODE_OPTIONS: '--enable-source-maps',
      IAM_URL: `http://127.0.0.1:${registry.service('iam').port}`,
      MASTERDATA_URL: `http://127.0.0.1:${registry.service('masterdata').port}`,
      HOST: '127.0.0.1',
      PORT: String(registry.service('core').port),
      DATABASE_URL: 'postgresql://core_app:pw@127.0.0.1:5454/core',
    });
    expect(JSON.stringify(env)).not.toMatch(/secret/);
  });

  it('passes a service\'s own settings to it alone', () => {
    const withOwn = { ...parent, IAM_SIGNING_KEY_SECRET: 'key-secret-key-secret', CORS_ORIGINS: 'https://app.example.com' };
    expect(serviceEnvironment(registry, registry.service('iam'), undefined, withOwn).IAM_SIGNING_KEY_SECRET).toBe('key-secret-key-secret');
    expect(serviceEnvironment(registry, registry.service('gateway'), undefined, withOwn).CORS_ORIGINS).toBe('https://app.example.com');
    for (const key of ['core', 'gateway', 'masterdata']) {
      expect(serviceEnvironment(registry, registry.service(key), undefined, withOwn).IAM_SIGNING_KEY_SECRET, key).toBeUndefined();
    }
  });

  it('gives IAM master data\'s URL, its mailbox in the data directory and reset links on the gateway\'s port', () => {
    const moved = loadRegistry(undefined, { GATEWAY_PORT: '5999' });
    const env = serviceEnvironment(moved, moved.service('iam'), undefined, { ARCHIPELAGO_DATA_DIR: '/srv/archipelago', SMTP_URL: 'smtp://mail.example.com:587' });
    expect(env).toMatchObject({
      MASTERDATA_URL: `http://127.0.0.1:${moved.service('masterdata').port}`,
      MAIL_DIR: '/srv/archipelago/mail',
      PASSWORD_RESET_URL: 'http://127.0.0.1:5999/reset-password?token=',
      SMTP_URL: 'smtp://mail.example.com:587',
    });
    expect(serviceEnvironment(moved, moved.service('iam'), undefined, { PASSWORD_RESET_URL: 'https://app.example.com/reset?t=' }).PASSWORD_RESET_URL).toBe('https://app.example.com/reset?t=');
    expect(serviceEnvironment(moved, moved.service('core'), undefined, { SMTP_URL: 'smtp://mail.example.com:587' }).SMTP_URL).toBeUndefined();
  });

  it('gives a stateless service no database URL at all', () => {
    expect(serviceEnvironment(registry, registry.service('gateway'), undefined, parent).DATABASE_URL).toBeUndefined();
  });
});

describe('the CLI\'s own settings', () => {
  it('name the variable that is wrong', () => {
    expect(() => localSettings({ ARCHIPELAGO_PG_PORT: '99999' })).toThrow(ConfigError);
    expect(() => localSettings({ DATABASE_CONNECT_ATTEMPTS: 'abc' })).toThrow(/DATABASE_CONNECT_ATTEMPTS: must be integer/);
    expect(localSettings({ ARCHIPELAGO_DATA_DIR: '/tmp/x' })).toMatchObject({ dataDir: '/tmp/x', pgPort: 5454, connectAttempts: 8 });
  });

  it('run as many instances of a service as ARCHIPELAGO_INSTANCES says, in either topology, behind the gateway', () => {
    const registry = loadRegistry(undefined, {});
    const { instances } = localSettings({ ARCHIPELAGO_INSTANCES: 'core=2,notification=1' });
    expect(instances).toEqual({ core: 2, notification: 1 });
    const core = registry.service('core');
    expect(instancesOf(core, 'local', instances).map((i) => [i.key, i.port])).toEqual([['core', core.port], ['core-2', core.port + 100]]);
    expect(instancesOf(registry.service('notification'), 'distributed', instances)).toHaveLength(1); // instead of its replicas
    expect(instancesOf(core, 'local')).toHaveLength(1);
    const gateway = serviceEnvironment(registry, registry.service('gateway'), undefined, {}, {}, { topology: 'local', index: 0, instances });
    expect(gateway.CORE_URL).toBe(`http://127.0.0.1:${core.port},http://127.0.0.1:${core.port + 100}`);
    expect(() => localSettings({ ARCHIPELAGO_INSTANCES: 'core=0' })).toThrow(/ARCHIPELAGO_INSTANCES/);
  });
});

describe('a service process command', () => {
  const registry = loadRegistry(undefined, {});

  it('gives the gateway a 16 MB young generation, notification 8 MB and every other service 1 MB', () => {
    const semiSpace = (key: string) => serviceCommand(registry.service(key)).filter((arg) => arg.startsWith('--max-semi-space-size='));
    expect(semiSpace('gateway')).toEqual(['--max-semi-space-size=16']);
    expect(semiSpace('notification')).toEqual(['--max-semi-space-size=8']);
    for (const key of ['core', 'iam', 'masterdata', 'reporting']) expect(semiSpace(key)).toEqual(['--max-semi-space-size=1']);
  });
});
