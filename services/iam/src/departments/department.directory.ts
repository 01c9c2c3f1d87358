import { AppError } from '@archipelago/platform';
import { internalFetch, type ServiceCredentials } from '@archipelago/platform/internal-auth';

/**
 * Master data's departments, asked at request time (masterdata starts after IAM, so this is a
 * run-time dependency, never a start-up one). Unreachable master data is a 503: nothing is written.
 */
export function departmentDirectory(masterdataUrl: string, credentials: ServiceCredentials | undefined, options: { timeoutMs?: number } = {}) {
  const base = masterdataUrl.replace(/\/$/, '');
  const timeoutMs = options.timeoutMs ?? 3_000;

  // The one HTTP call IAM makes to masterdata.
  const askMasterdata = async (codes: readonly string[]): Promise<{ code: string; active: boolean }[]> => {
    if (!credentials) throw unavailable(new Error('iam has no service credentials to ask masterdata with'));
    let response: Response;
    try {
      response = await internalFetch(credentials, 'masterdata', `${base}/internal/v1/departments/validate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ codes }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw unavailable(error);
    }
    if (!response.ok) throw unavailable(new Error(`masterdata answered HTTP ${response.status}`));
    return ((await response.json()) as { items: { code: string; active: boolean }[] }).items;
  };

  return {
    /** Throws a 422 naming `field` unless `code` is a live, active department. */
    async requireLive(code: string, field: string): Promise<void> {
      const found = await askMasterdata([code]);
      if (!found.some((d) => d.code === code && d.active)) {
        throw new AppError('UNPROCESSABLE_REFERENCE', `Department ${code} does not exist or is inactive`, { fields: [{ field, message: 'is not an active department', value: code }] });
      }
    },
  };
}

export type DepartmentDirectory = ReturnType<typeof departmentDirectory>;

const unavailable = (cause: unknown) =>
  new AppError('UNAVAILABLE', 'Cannot check the department now: masterdata did not answer. Nothing was written; try again.', { cause });
