import type { Registry } from '@archipelago/registry';
import { callService } from '../internal-api.ts';

const DEPARTMENT = /^([A-Z0-9][A-Z0-9._-]{0,19}|_none)$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * `archipelago notifications restore <dept> <date>`: the running notification service puts one
 * department's day back from its archive (`_none`: the notifications without a department),
 * through its operator route; rows already there are left alone, so running it twice is harmless.
 */
export async function notifications(
  registry: Registry,
  action: 'restore',
  args: { department?: string; day?: string },
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
): Promise<number> {
  const { department, day } = args;
  if (!department || !day || !DEPARTMENT.test(department) || !DAY.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) {
    say(`notifications ${action} needs a department code (or _none) and a day, e.g. \`notifications restore LAB 2026-10-01\`.`);
    return 2;
  }
  const result = await callService<{ restored: number; inArchive: number }>(registry.service('notification'), env, {
    method: 'POST', path: '/internal/v1/archives/restore', body: { department, day },
  });
  say(`${department} ${day}: ${result!.restored} of the archive's ${result!.inArchive} notifications restored${result!.restored < result!.inArchive ? ' (the others were already there)' : ''}.`);
  return 0;
}
