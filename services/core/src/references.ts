/** One application-layer foreign key to check (DESIGN.md §6); null and undefined values are skipped. */
export interface ReferenceCheck {
  /** Where the value came from, as a problem names it, e.g. `body.label_code`. */
  readonly field: string;
  readonly value: string | null | undefined;
  /** What it refers to: a lookup's entity (`label`, `region`, …) or an owner's (`user`). */
  readonly ref: string;
}

/** The reference validator core's services use; the composition root gives the platform's. */
export interface References {
  /** Throws a 422 naming the field and value of an invalid reference, or 503 if its owner is unreachable. */
  check(checks: readonly ReferenceCheck[]): Promise<void>;
}
