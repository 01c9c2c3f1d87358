/**
 * Runs concurrent calls together: the first call starts a batch at once; calls made while it runs
 * wait and go as the next batch (up to `maxBatch` items), so under load one transaction (one lock,
 * one commit) serves many requests and when idle a call waits for nothing. `run` answers each item
 * in order. When a batch of several fails, each of its items runs again alone, so one bad item
 * fails only its own call, unless `retryAlone` says the failure is not the items' (a database
 * gone away): then every call of the batch fails at once instead of waiting its turn to fail.
 *
 * @example
 * const create = batched((inputs: readonly Input[]) => db.transaction().execute((trx) => repository.insert(trx, inputs)));
 * const row = await create(input);
 */
export function batched<I, O>(
  run: (items: readonly I[]) => Promise<readonly O[]>,
  options: { readonly maxBatch?: number; readonly retryAlone?: (error: unknown) => boolean } = {},
): (item: I) => Promise<O> {
  const { maxBatch = 256, retryAlone = () => true } = options;
  interface Waiting {
    readonly item: I;
    resolve(output: O): void;
    reject(error: unknown): void;
  }
  const waiting: Waiting[] = [];
  let running = false;

  const settle = async (batch: readonly Waiting[]) => {
    try {
      const outputs = await run(batch.map((entry) => entry.item));
      if (outputs.length !== batch.length) throw new Error(`a batch of ${batch.length} answered ${outputs.length}`);
      batch.forEach((entry, i) => entry.resolve(outputs[i]!));
    } catch (error) {
      if (batch.length === 1 || !retryAlone(error)) return batch.forEach((entry) => entry.reject(error));
      for (const entry of batch) await settle([entry]);
    }
  };
  const drain = async () => {
    running = true;
    while (waiting.length > 0) await settle(waiting.splice(0, maxBatch));
    running = false;
  };

  return (item) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (!running) void drain();
    });
}
