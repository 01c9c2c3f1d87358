import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVICE_TOKEN_HEADER } from '@archipelago/platform/internal-auth';
import { testCredentials, testServiceToken } from '@archipelago/platform/testing/credentials';
import { startIam } from './helpers.ts';

// IAM's per-address limit and its audit log take the client's address from X-Forwarded-For only
// when the gateway's service token vouches for it; any other peer (loopback included) is its socket.
describe('client addresses at IAM', async () => {
  const { app, db } = await startIam({
    ipThrottle: { maxFailures: 3, windowSeconds: 900, lockSeconds: 900, maxLockSeconds: 900 },
    accountThrottle: { maxFailures: 1000, windowSeconds: 900, lockSeconds: 900, maxLockSeconds: 900 },
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  afterAll(() => app.close());

  const gatewayToken = () => testCredentials('gateway').token('iam');
  const attempt = async (n: number, headers: Record<string, string>) => {
    const response = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ email: `nobody-${n}-${Math.random()}@example.com`, password: 'wrong password' }),
    });
    return response.status;
  };
  const addressesOf = async (emailLike: string) =>
    (await sql<{ ip: string }>`SELECT DISTINCT ip FROM auth_audit_log WHERE email LIKE ${emailLike}`.execute(db)).rows.map((r) => r.ip);

  it('ignores X-Forwarded-For from a peer that is not the gateway: the limit holds and the audit log has the real address', async () => {
    const statuses: number[] = [];
    for (let n = 0; n < 6; n++) statuses.push(await attempt(n, { 'x-forwarded-for': `198.18.0.${n + 1}` }));
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    const invented = (await sql<{ n: number }>`SELECT count(*)::int AS n FROM auth_audit_log WHERE ip LIKE '198.18.0.%'`.execute(db)).rows[0]!.n;
    expect(invented).toBe(0);
    expect(await addressesOf('nobody-%')).toEqual(['127.0.0.1']);
  });

  it('takes the address the gateway forwards, so the limit counts per client behind it', async () => {
    const token = await gatewayToken();
    const spread: number[] = [];
    for (let n = 0; n < 6; n++) spread.push(await attempt(n, { [SERVICE_TOKEN_HEADER]: token, 'x-forwarded-for': `203.0.113.${n + 10}` }));
    expect(spread).toEqual(Array(6).fill(401)); // six clients, one failure each
    const same: number[] = [];
    for (let n = 0; n < 6; n++) same.push(await attempt(n, { [SERVICE_TOKEN_HEADER]: token, 'x-forwarded-for': '203.0.113.99' }));
    expect(same.at(-1)).toBe(429); // one client guessing is still limited through the gateway
    const rows = await sql<{ ip: string }>`SELECT DISTINCT ip FROM auth_audit_log WHERE ip LIKE '203.0.113.%'`.execute(db);
    expect(rows.rows.length).toBe(7);
  });

  it('does not trust the X-Forwarded-For of a request with a forged gateway token', async () => {
    const forged = await testServiceToken('gateway', 'iam', { signedBy: 'core' });
    const response = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SERVICE_TOKEN_HEADER]: forged, 'x-forwarded-for': '203.0.113.200' },
      body: JSON.stringify({ email: 'forged@example.com', password: 'wrong password' }),
    });
    expect([401, 429]).toContain(response.status); // a wrong password, counted against 127.0.0.1 (locked if the first test ran)
    expect(await addressesOf('forged@%')).toEqual(['127.0.0.1']);
  });
});
