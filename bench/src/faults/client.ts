import { isOk, now, sleep, type Outcome, type Sample } from './timeline.ts';

/** Every response of the load, and the unexpected ones (5xx other than 503) with their request ids. */
export interface Recorder {
  readonly responses: Sample[];
  readonly unexpected: string[];
}

export interface Answer {
  readonly outcome: Outcome;
  readonly body: unknown;
}

export interface GatewayClient {
  send(method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  /**
   * A write under an Idempotency-Key, retried as a careful client does while the outcome is
   * unknown (5xx, timeout, reset, 409 "in progress") for up to `budgetMs`: the answer is final
   * (2xx or a 4xx refusal) unless the budget ran out.
   */
  write(method: string, url: string, body: unknown, key: string, budgetMs?: number): Promise<Answer>;
}

const REQUEST_TIMEOUT_MS = 15_000;
// A retry may meet the key still held by the killed attempt: 409 until it is stale (30 s).
const RETRY_BUDGET_MS = 45_000;

export const isFinal = (outcome: Outcome): boolean => isOk(outcome) || (typeof outcome === 'number' && outcome >= 400 && outcome < 500 && outcome !== 409);

/** Requests through the gateway with a bearer token; every answer lands in `recorder`. */
export function gatewayClient(gateway: string, token: string, recorder: Recorder): GatewayClient {
  const send = async (method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
    let answer: Answer;
    try {
      const response = await fetch(`${gateway}${url}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await response.text();
      if (response.status >= 500 && response.status !== 503) recorder.unexpected.push(`${response.status} ${method} ${url} ${response.headers.get('x-request-id') ?? ''}`);
      answer = { outcome: response.status, body: text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
    } catch (error) {
      answer = { outcome: (error as Error).name === 'TimeoutError' ? 'timeout' : 'network', body: undefined };
    }
    recorder.responses.push({ at: now(), outcome: answer.outcome });
    return answer;
  };
  return {
    send,
    async write(method, url, body, key, budgetMs = RETRY_BUDGET_MS) {
      const began = now();
      for (let attempt = 0; ; attempt++) {
        const answer = await send(method, url, body, { 'idempotency-key': `"${key}"` });
        if (isFinal(answer.outcome) || now() - began > budgetMs) return answer;
        await sleep(Math.min(250 * 2 ** attempt, 2_000));
      }
    },
  };
}
