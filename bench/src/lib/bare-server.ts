import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '@archipelago/platform';
import { registerCleanup } from './cleanup.ts';
import { NODE_FLAGS, REPOSITORY_ROOT } from './system.ts';

const SCRIPT = path.join(REPOSITORY_ROOT, 'bench/src/servers/bare-http.ts');

export interface BareServer {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts servers/bare-http.ts in its own process, with the services' Node flags. */
export async function startBareServer(signal: AbortSignal): Promise<BareServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', SCRIPT, String(port)], { cwd: REPOSITORY_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = registerCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const settle = (outcome: () => void): void => {
        signal.removeEventListener('abort', onAbort);
        outcome();
      };
      const onAbort = (): void => settle(() => reject(new Error('aborted while starting the bare node:http server')));
      signal.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && settle(resolve));
      child.once('exit', (code) => settle(() => reject(new Error(`the bare node:http server exited with ${code}`))));
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}`, pid: child.pid ?? 0, stop };
}
