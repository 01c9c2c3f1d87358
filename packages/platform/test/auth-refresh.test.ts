import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, createAuth, type ActiveSession, type AuthorizationData, type AuthSources } from '../src/auth/index.ts';

const TTL = 30_000;
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const tokenFor = (sessionId: string) =>
  new SignJWT({ sid: sessionId }).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(ACCESS_TOKEN_ISSUER).setAudience(ACCESS_TOKEN_AUDIENCE).setSubject('u1').setExpirationTime('10m').sign(privateKey);

interface Held<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

/** IAM's answers, each call held until the test settles it. */
function heldSources() {
  const sessionCalls: Held<ActiveSession | null>[] = [];
  const authorizationCalls: Held<AuthorizationData>[] = [];
  const held = <T>(calls: Held<T>[]) => {
    let resolve!: (value: T) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
    calls.push({ promise, resolve, reject });
    return promise;
  };
  const sources: AuthSources = {
    keys: async () => publicKey,
    apiToken: async () => null,
    sessionActive: () => held(sessionCalls),
    authorization: () => held(authorizationCalls),
  };
  return { sources, sessionCalls, authorizationCalls };
}
const session = (departmentCode: string, roles = ['staff']): ActiveSession => ({ userId: 'u1', roles, departmentCode });
const roleMap = (permissions: string[]): AuthorizationData => ({ roles: { staff: permissions }, policies: [] });

describe('auth caches: what is in use is asked again before it runs out', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-03T08:00:00Z'));
  });
  afterEach(() => void vi.useRealTimers());

  it("asks IAM about a session in use again in the background before its answer runs out, and then uses the new answer", async () => {
    const { sources, sessionCalls, authorizationCalls } = heldSources();
    const auth = createAuth({ sources, sessionTtlMs: TTL, authorizationTtlMs: 10 * TTL });
    const token = await tokenFor('s1');
    const first = auth.verifyToken(token);
    await vi.waitFor(() => expect(sessionCalls).toHaveLength(1));
    sessionCalls[0]!.resolve(session('LAB'));
    await vi.waitFor(() => expect(authorizationCalls).toHaveLength(1));
    authorizationCalls[0]!.resolve(roleMap(['notifications:read']));
    expect((await first).departmentCode).toBe('LAB');

    vi.setSystemTime(Date.now() + TTL / 2);
    expect((await auth.verifyToken(token)).departmentCode).toBe('LAB');
    expect(sessionCalls).toHaveLength(1);

    // Past three quarters of the TTL: the request is answered from the cache at once, IAM is asked meanwhile.
    vi.setSystemTime(Date.now() + TTL / 4 + 1);
    expect((await auth.verifyToken(token)).departmentCode).toBe('LAB');
    expect(sessionCalls).toHaveLength(2);
    expect((await auth.verifyToken(token)).departmentCode).toBe('LAB');
    expect(sessionCalls).toHaveLength(2); // one question at a time
    sessionCalls[1]!.resolve(session('PHARM'));
    await vi.waitFor(async () => expect((await auth.verifyToken(token)).departmentCode).toBe('PHARM'));

    // The new answer counts its TTL from when it was asked: a sign-out it missed stops the token within it.
    vi.setSystemTime(Date.now() + TTL);
    const afterTtl = auth.verifyToken(token);
    await vi.waitFor(() => expect(sessionCalls).toHaveLength(3));
    sessionCalls[2]!.resolve(null);
    await expect(afterTtl).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('never uses an answer past its TTL: a failed background question leaves it to run out, and then IAM is waited for', async () => {
    const { sources, sessionCalls, authorizationCalls } = heldSources();
    const auth = createAuth({ sources, sessionTtlMs: TTL, authorizationTtlMs: 10 * TTL });
    const token = await tokenFor('s2');
    const first = auth.verifyToken(token);
    await vi.waitFor(() => expect(sessionCalls).toHaveLength(1));
    sessionCalls[0]!.resolve(session('LAB'));
    await vi.waitFor(() => expect(authorizationCalls).toHaveLength(1));
    authorizationCalls[0]!.resolve(roleMap(['notifications:read']));
    await first;

    vi.setSystemTime(Date.now() + TTL * 0.8);
    await auth.verifyToken(token);
    expect(sessionCalls).toHaveLength(2);
    sessionCalls[1]!.reject(new Error('IAM is away'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await auth.verifyToken(token)).departmentCode).toBe('LAB');
    expect(sessionCalls).toHaveLength(2); // not asked again on every request while IAM is away

    vi.setSystemTime(Date.now() + TTL * 0.2 + 1);
    const afterTtl = auth.verifyToken(token);
    await vi.waitFor(() => expect(sessionCalls).toHaveLength(3));
    sessionCalls[2]!.reject(new Error('IAM is still away'));
    await expect(afterTtl).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it("loads the role → permission map again in the background before it runs out, and then decides with the new one", async () => {
    const { sources, sessionCalls, authorizationCalls } = heldSources();
    const auth = createAuth({ sources, sessionTtlMs: 100 * TTL, authorizationTtlMs: TTL });
    const token = await tokenFor('s3');
    const first = auth.verifyToken(token);
    await vi.waitFor(() => expect(sessionCalls).toHaveLength(1));
    sessionCalls[0]!.resolve(session('LAB'));
    await vi.waitFor(() => expect(authorizationCalls).toHaveLength(1));
    authorizationCalls[0]!.resolve(roleMap(['notifications:read']));
    expect((await first).permissions).toEqual(['notifications:read']);

    vi.setSystemTime(Date.now() + TTL * 0.8);
    expect((await auth.verifyToken(token)).permissions).toEqual(['notifications:read']);
    expect(authorizationCalls).toHaveLength(2);
    authorizationCalls[1]!.resolve(roleMap(['notifications:read', 'notifications:write']));
    await vi.waitFor(async () => expect((await auth.verifyToken(token)).permissions).toEqual(['notifications:read', 'notifications:write']));
    expect(authorizationCalls).toHaveLength(2);
  });
});
