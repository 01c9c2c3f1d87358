/**
 * Cleanups that must run however the bench ends: normal completion, a failed scenario, or Ctrl-C.
 * They run last-registered first, so a system stops before its data directory is removed.
 */
type Cleanup = () => Promise<void>;

const pending: Cleanup[] = [];

/** Registers `cleanup`; the returned function runs it now (once) and unregisters it. */
export function registerCleanup(cleanup: Cleanup): () => Promise<void> {
  let done: Promise<void> | undefined;
  const once: Cleanup = () => (done ??= cleanup());
  pending.push(once);
  return async () => {
    const index = pending.indexOf(once);
    if (index >= 0) pending.splice(index, 1);
    await once();
  };
}

/** Runs every registered cleanup, newest first, reporting but not stopping on failures. */
export async function runAllCleanups(report: (message: string) => void): Promise<void> {
  while (pending.length > 0) {
    const cleanup = pending.pop()!;
    try {
      await cleanup();
    } catch (error) {
      report(`cleanup failed: ${(error as Error).message}`);
    }
  }
}
