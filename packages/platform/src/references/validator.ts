import { AppError, type FieldProblem } from '../errors.ts';

/** One reference a request makes: `value` must name an existing `ref` (null/undefined: none). */
export interface ReferenceCheck {
  /** Where the value came from, e.g. `body.label_code`; named in the 422. */
  readonly field: string;
  readonly value: string | null | undefined;
  /** Kind of thing referenced, a key of the validator's sources, e.g. `label`, `user`. */
  readonly ref: string;
}

/** Answers which of some values exist and may be referenced; throws when it cannot tell. */
export interface ReferenceSource {
  /** Who owns the referenced thing, for the 503 when it cannot be asked, e.g. `iam`. */
  readonly owner: string;
  resolve(values: readonly string[]): Promise<ReadonlySet<string>>;
}

/** Checks application-layer foreign keys (docs/architecture.md#references-across-services). */
export interface ReferenceValidator {
  /** Resolves when every reference exists; throws a 422 naming each bad one, or a 503. */
  check(checks: readonly ReferenceCheck[]): Promise<void>;
}

/**
 * @example
 * const references = createReferenceValidator({ label: lookupReferences(db, 'labels_lookup'), user: users });
 * await references.check([{ field: 'body.label_code', value: input.label_code, ref: 'label' }]);
 */
export function createReferenceValidator(sources: Readonly<Record<string, ReferenceSource>>): ReferenceValidator {
  return {
    async check(checks) {
      const wanted = new Map<string, Set<string>>();
      for (const check of checks) {
        if (check.value === null || check.value === undefined) continue;
        if (!sources[check.ref]) throw new Error(`no reference source for "${check.ref}" (have ${Object.keys(sources).join(', ')})`);
        (wanted.get(check.ref) ?? wanted.set(check.ref, new Set()).get(check.ref)!).add(check.value);
      }
      const found = new Map<string, ReadonlySet<string>>();
      await Promise.all(
        [...wanted].map(async ([ref, values]) => {
          const source = sources[ref]!;
          try {
            found.set(ref, await source.resolve([...values]));
          } catch (error) {
            throw new AppError('UNAVAILABLE', `Cannot check ${ref} references now: ${source.owner} did not answer. Nothing was written; try again.`, { cause: error });
          }
        }),
      );
      const problems: FieldProblem[] = checks
        .filter((check) => check.value !== null && check.value !== undefined && !found.get(check.ref)!.has(check.value))
        .map((check) => ({ field: check.field, message: `no active ${check.ref} has this value`, value: check.value }));
      if (problems.length > 0) {
        throw new AppError('UNPROCESSABLE_REFERENCE', problems.map((p) => `${p.field} = ${JSON.stringify(p.value)} refers to no active ${checks.find((c) => c.field === p.field)!.ref}`).join('; '), { fields: problems });
      }
    },
  };
}
