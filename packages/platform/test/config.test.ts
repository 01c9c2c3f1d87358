import Type from 'typebox';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, serviceConfigSchema } from '../src/config.ts';
import { DatabaseUnreachableError, waitForDatabase } from '../src/db.ts';
import { freePort } from '../src/net.ts';

describe('configuration', () => {
  it('converts and defaults values', () => {
    const config = loadConfig(serviceConfigSchema, { PORT: '4104', DATABASE_URL: 'postgresql://u:p@h/db' });
    expect(config).toMatchObject({ PORT: 4104, HOST: '127.0.0.1', LOG_LEVEL: 'info', DATABASE_CONNECT_ATTEMPTS: 8 });
  });

  it('names every bad or missing variable', () => {
    const attempt = () => loadConfig(serviceConfigSchema, { PORT: 'eighty', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      expect((error as ConfigError).problems.map((p) => p.variable).sort()).toEqual(['DATABASE_URL', 'LOG_LEVEL', 'PORT']);
      expect((error as Error).message).toContain('PORT: must be integer (got "eighty")');
    }
    expect(() => loadConfig(Type.Object({ SECRET: Type.String() }), {})).toThrow(/SECRET: is required/);
  });
});

describe('an unreachable database', () => {
  it('is retried with backoff, then reported with the URL (password hidden) and what to check', async () => {
    const port = await freePort();
    const url = `postgresql://core_app:s3cret@127.0.0.1:${port}/core`;
    const retries: number[] = [];
    const error = await waitForDatabase(url, { attempts: 3, hint: 'Check CORE_DATABASE_URL.', onRetry: (_a, delay) => retries.push(delay) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect(retries).toEqual([250, 500]);
    const message = (error as Error).message;
    expect(message).toContain(`postgresql://core_app:***@127.0.0.1:${port}/core`);
    expect(message).not.toContain('s3cret');
    expect(message).toMatch(/after 3 attempts .*ECONNREFUSED.*Check CORE_DATABASE_URL\./);
  });
});

describe('configuration errors', () => {
  it('never echo a password, secret or a URL\'s password', () => {
    try {
      loadConfig(serviceConfigSchema, { PORT: '1', DATABASE_URL: 'postgress://core_app:S3CRET@db/core' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect((error as Error).message).toContain('DATABASE_URL');
      expect((error as Error).message).not.toContain('S3CRET');
    }
  });
});
