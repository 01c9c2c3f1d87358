/** Every error a client can see, by code. One place maps a code to its HTTP status. */
export const errorStatus = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  EXPECTATION_FAILED: 417,
  UNPROCESSABLE_REFERENCE: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  UPSTREAM_FAILED: 502,
  UNAVAILABLE: 503,
  UPSTREAM_TIMEOUT: 504,
} as const;

export type ErrorCode = keyof typeof errorStatus;

/** One offending input: `field` is a JSON pointer-ish path such as `body.email`. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
  readonly value?: unknown;
}

/**
 * The one error type of the platform. Routes throw it; the HTTP layer renders it as
 * RFC 9457 problem+json.
 *
 * @example
 * throw new AppError('NOT_FOUND', `Label ${code} does not exist`);
 * throw new AppError('UNPROCESSABLE_REFERENCE', 'Unknown label', { fields: [{ field: 'label_code', message: 'no such label', value: 'XX' }] });
 */
export class AppError extends Error {
  readonly status: number;
  readonly fields: readonly FieldProblem[];
  /** Extension members of the problem (RFC 9457 §3.2), for clients that act on them. */
  readonly extensions: Readonly<Record<string, string | number | boolean>>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { fields?: readonly FieldProblem[]; extensions?: Readonly<Record<string, string | number | boolean>>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.status = errorStatus[code];
    this.fields = options.fields ?? [];
    this.extensions = options.extensions ?? {};
  }
}

/** RFC 9457 problem details, with our `code` and the offending `errors`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors?: readonly FieldProblem[];
  /** Extension members, e.g. a feed's `prunedThrough`. */
  [extension: string]: unknown;
}

const titles: Record<ErrorCode, string> = {
  BAD_REQUEST: 'Bad request',
  VALIDATION_FAILED: 'Request validation failed',
  UNAUTHENTICATED: 'Authentication required',
  FORBIDDEN: 'Forbidden',
  NOT_FOUND: 'Not found',
  METHOD_NOT_ALLOWED: 'Method not allowed',
  REQUEST_TIMEOUT: 'Request timeout',
  CONFLICT: 'Conflict',
  IDEMPOTENCY_KEY_IN_USE: 'Idempotency key in use',
  GONE: 'Gone',
  PAYLOAD_TOO_LARGE: 'Payload too large',
  URI_TOO_LONG: 'URI too long',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  EXPECTATION_FAILED: 'Expectation failed',
  UNPROCESSABLE_REFERENCE: 'Invalid reference',
  IDEMPOTENCY_KEY_REUSED: 'Idempotency key reused for another request',
  RATE_LIMITED: 'Too many requests',
  HEADERS_TOO_LARGE: 'Request header fields too large',
  INTERNAL: 'Internal server error',
  UPSTREAM_FAILED: 'Upstream service failed',
  UNAVAILABLE: 'Service unavailable',
  UPSTREAM_TIMEOUT: 'Upstream service timed out',
};

/** Renders an AppError as problem+json; 5xx details are replaced so internals never leak. */
export function toProblem(error: AppError, instance?: string): Problem {
  const hide = error.status >= 500 && error.code === 'INTERNAL';
  return {
    ...error.extensions,
    type: `https://archipelago.dev/problems/${error.code.toLowerCase().replace(/_/g, '-')}`,
    title: titles[error.code],
    status: error.status,
    detail: hide ? 'An unexpected error occurred; the request id identifies it in the logs.' : error.message,
    code: error.code,
    ...(instance ? { instance } : {}),
    ...(error.fields.length > 0 ? { errors: error.fields } : {}),
  };
}
