/** Builds dist/ (see build.mjs); resolves with the number of entry points. */
export function build(): Promise<number>;
