/** Builds dist/ (see build.mjs); resolves with the number of entry points. */
export function build(): Promise<number>;
/** The source files a process running the compiled `entry` loads before any dynamic import (see build.mjs). */
export function loadedAtStart(entry: string): Promise<string[]>;
