import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

// What the services' logs say about some request ids (errors only), by request id.
export async function loggedCauses(logDir: string, failed: readonly string[]): Promise<Map<string, string>> {
  const ids = new Set(failed.map((line) => line.split(' ').at(-1)!).filter(Boolean));
  const causes = new Map<string, string>();
  for (const file of await readdir(logDir).catch(() => [])) {
    for (const line of (await readFile(path.join(logDir, file), 'utf8')).split('\n')) {
      try {
        const entry = JSON.parse(line) as { reqId?: string; level?: number; msg?: string; err?: { type?: string; code?: string; message?: string } };
        if (entry.reqId && ids.has(entry.reqId) && (entry.level ?? 0) >= 40) {
          causes.set(entry.reqId, `${causes.get(entry.reqId) ?? ''}[${file}] ${entry.msg}: ${entry.err?.type ?? ''} ${entry.err?.code ?? ''} ${entry.err?.message ?? ''} `);
        }
      } catch {
        // not a JSON line
      }
    }
  }
  return causes;
}

