/** Exit code that tells the supervisor not to restart: the problem is configuration, not luck. */
export const EXIT_CONFIG = 78;

/** A start-up problem a newcomer can act on; printed as its message, without a stack trace. */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}
