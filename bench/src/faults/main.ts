/**
 * `npm run test:faults [-- fault …]`: the embedded fault run (embedded.ts).
 * `npm run test:faults:distributed [-- [--observe=S] [--warmup=S] fault …]`: the distributed one (distributed.ts).
 * Either stops everything it started, also on failure, timeout or Ctrl-C.
 */
import process from 'node:process';
import { runAllCleanups } from '../lib/cleanup.ts';
import { DISTRIBUTED_FAULTS, runDistributedFaults } from './distributed.ts';
import { EMBEDDED_FAULTS, runEmbeddedFaults } from './embedded.ts';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const distributed = args.includes('--distributed');
  const option = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
  const names = args.filter((arg) => !arg.startsWith('--'));
  const known = distributed ? DISTRIBUTED_FAULTS : EMBEDDED_FAULTS;
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) throw new Error(`unknown fault ${unknown.join(', ')} (have ${known.join(', ')})`);
  const selected = names.length > 0 ? names : known;
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  // The run is bounded whatever happens.
  const deadline = setTimeout(() => abort.abort(), (distributed ? 10 : 6) * 60_000);
  deadline.unref();
  if (!distributed) return runEmbeddedFaults(selected, abort);
  const result = await runDistributedFaults({
    faults: selected,
    signal: abort.signal,
    say: (line) => process.stdout.write(`${line}\n`),
    observeS: option('observe') === undefined ? undefined : Number(option('observe')),
    warmupS: option('warmup') === undefined ? undefined : Number(option('warmup')),
  });
  process.exitCode = result.problems.length > 0 ? 1 : 0;
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`Fault run failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => runAllCleanups((message) => process.stderr.write(`${message}\n`)));
