// Query parameters whose values are secrets (reset and API tokens, OAuth codes, passwords,
// signed-URL signatures): logged as `[redacted]`, never as given.
const SECRET_NAME = /token|passw|secret|signature|api[-_]?key|credential|session|^auth(orization)?$/i;
const SECRET_EXACT = new Set(['code', 'key', 'sig', 'jwt', 'otp', 'pwd', 'pass', 'hash']);

/** Whether a query parameter's value must not be logged. */
export const isSecretParameter = (name: string): boolean => SECRET_NAME.test(name) || SECRET_EXACT.has(name.toLowerCase());

/**
 * A request target fit for a log line: the values of token-like query parameters replaced.
 *
 * @example
 * redactQuery('/reset?token=abc&lang=en') // '/reset?token=[redacted]&lang=en'
 */
export function redactQuery(url: string): string {
  const mark = url.indexOf('?');
  if (mark === -1) return url;
  const parts = url.slice(mark + 1).split('&').map((part) => {
    const equals = part.indexOf('=');
    const rawName = equals === -1 ? part : part.slice(0, equals);
    let name = rawName;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      // A malformed name is logged as it came; its value is still judged by the raw name.
    }
    return equals !== -1 && isSecretParameter(name) ? `${rawName}=[redacted]` : part;
  });
  return `${url.slice(0, mark)}?${parts.join('&')}`;
}
