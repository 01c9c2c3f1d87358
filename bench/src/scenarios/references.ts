import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql, type Kysely } from 'kysely';
import { createServiceCredentials, localKeyring, OPERATOR, principalsOf, privateKeyFromText } from '@archipelago/platform/internal-auth';
import { cachedReferences, createReferenceValidator, iamUserResolver, lookupReferences, type ReferenceValidator } from '@archipelago/platform/references';
import { loadRegistry } from '@archipelago/registry';
import type { Figure, Scenario } from '../scenario.ts';
import { serviceDatabase } from '../lib/databases.ts';
import { LatencyRecorder, type LatencySummary } from '../lib/latency.ts';
import { round } from '../lib/stats.ts';

/** Concurrent checks in the coalescing run, over this many distinct users. */
const CONCURRENT = 1_000;
const DISTINCT = 100;

async function timed(times: number, step: (i: number) => Promise<unknown>): Promise<LatencySummary> {
  const recorder = new LatencyRecorder();
  for (let i = 0; i < times; i++) {
    const began = performance.now();
    await step(i);
    recorder.record(performance.now() - began);
  }
  const summary = recorder.summary();
  recorder.destroy();
  return summary;
}

/** The validator's 422 for a value that names nothing, or its pass: either is an answer. */
async function checkOne(validator: ReferenceValidator, ref: string, value: string): Promise<void> {
  await validator.check([{ field: 'body.value', value, ref }]).catch((error: unknown) => {
    if ((error as { code?: string }).code !== 'UNPROCESSABLE_REFERENCE') throw error;
  });
}

const latencyFigures = (key: string, title: string, summary: LatencySummary, baseline?: { name: string; value: number }): Figure[] => [
  { key: `${key}.p50`, label: `${title}: p50`, value: round(summary.p50Ms, 3), unit: 'ms', ...(baseline ? { baseline } : {}) },
  { key: `${key}.p99`, label: `${title}: p99`, value: round(summary.p99Ms, 3), unit: 'ms' },
];

/**
 * What checking an application-layer foreign key costs (docs/architecture.md#references-across-services):
 * against a lookup table the service keeps (core's labels), and against the owner's batch API
 * (IAM's users) with the platform's cache, cold and warm, and how concurrent misses coalesce.
 */
export const references: Scenario = {
  name: 'references',
  title: 'Cross-service reference validation: lookup table and owner API',
  built: true,
  timeLimitS: { quick: 60, full: 180 },
  async run(context) {
    const system = await context.system();
    const times = context.quick ? 300 : 3_000;
    const db: Kysely<unknown> = await serviceDatabase(system, 'core', { applicationName: 'bench-references', max: 2 });
    try {
      const codes = (await sql<{ code: string }>`SELECT code FROM labels_lookup WHERE is_active ORDER BY code LIMIT 50`.execute(db)).rows.map((r) => r.code);
      if (codes.length === 0) throw new Error('core has no active labels in labels_lookup to reference');
      const labels = createReferenceValidator({ label: lookupReferences(db, 'labels_lookup') });
      await timed(200, (i) => checkOne(labels, 'label', codes[i % codes.length]!)); // warm-up
      const pk = await timed(times, (i) => sql`SELECT 1 FROM labels_lookup WHERE code = ${codes[i % codes.length]!}`.execute(db));
      const lookup = await timed(times, (i) => checkOne(labels, 'label', codes[i % codes.length]!));
      const missingLookup = await timed(times, (i) => checkOne(labels, 'label', `NO${i}`));

      const registry = loadRegistry(undefined, {});
      const keyring = await localKeyring(system.dataDir, principalsOf(registry));
      const credentials = createServiceCredentials({ principal: OPERATOR, privateKey: privateKeyFromText(keyring.privateKey(OPERATOR)!), publicKeys: {} });
      const resolve = iamUserResolver(system.url('iam'), credentials);
      const cache = () => cachedReferences({ owner: 'iam', resolve, ttlMs: 300_000, negativeTtlMs: 300_000 });
      const users = cache();
      const validator = createReferenceValidator({ user: users });
      await timed(100, () => checkOne(validator, 'user', randomUUID())); // warm-up (token, connections)
      const miss = await timed(times, () => checkOne(validator, 'user', randomUUID()));
      const known = randomUUID();
      await checkOne(validator, 'user', known);
      const hit = await timed(times, () => checkOne(validator, 'user', known));

      const coalescing = cache();
      const concurrentValidator = createReferenceValidator({ user: coalescing });
      const ids = Array.from({ length: DISTINCT }, () => randomUUID());
      const began = performance.now();
      await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => checkOne(concurrentValidator, 'user', ids[i % DISTINCT]!)));
      const burstMs = performance.now() - began;
      const ownerRequests = coalescing.stats.requests;

      const pkBaseline = { name: 'SELECT by primary key, same pool', value: round(pk.p50Ms, 3) };
      const figures: Figure[] = [
        ...latencyFigures('references.lookup', 'lookup reference (core → labels_lookup), one value', lookup, pkBaseline),
        ...latencyFigures('references.lookup-missing', 'lookup reference naming no row (answers 422)', missingLookup, pkBaseline),
        ...latencyFigures('references.pk', 'SELECT by primary key on labels_lookup, same pool', pk).map((f) => ({ ...f, isBaseline: true })),
        ...latencyFigures('references.owner-miss', 'owner reference (core → IAM users/validate), not cached', miss),
        ...latencyFigures('references.owner-hit', 'owner reference, cached', hit),
        {
          key: 'references.owner-coalescing',
          label: `owner requests for ${CONCURRENT} concurrent checks of ${DISTINCT} uncached users`,
          value: ownerRequests,
          unit: 'requests',
          note: `all answered in ${round(burstMs, 1)} ms`,
        },
      ];
      return {
        figures,
        details: { pk, lookup, missingLookup, miss, hit, coalescing: { concurrent: CONCURRENT, distinct: DISTINCT, ownerRequests, burstMs } },
        notes: [
          `References: the platform's reference validator (\`createReferenceValidator\`) run in the bench process, ${times} checks one after another for each figure. Lookup: \`lookupReferences\` on core's labels_lookup as core's app role (the check core makes for an order's label); baseline a plain SELECT by primary key through the same pool. Owner: \`cachedReferences\` over \`iamUserResolver\` (IAM's POST /internal/v1/users/validate with the operator's service token); "not cached" asks a new random id each time (an IAM round trip; IAM finds no such user), "cached" repeats one. Coalescing: ${CONCURRENT} checks started in the same tick over ${DISTINCT} ids, against a fresh cache.`,
        ],
      };
    } finally {
      await db.destroy();
    }
  },
};
