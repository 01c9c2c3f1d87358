import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN, login, startIam } from './helpers.ts';

const form = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams(fields).toString(),
});

describe('the page a reset link opens', async () => {
  const { app, resetTokenMailedTo } = await startIam();
  afterAll(() => app.close());
  await app.inject({ method: 'POST', url: '/api/v1/auth/password-reset/request', payload: { email: ADMIN.email }, remoteAddress: '203.0.113.70' });
  const token = (await resetTokenMailedTo(ADMIN.email))!;

  it('serves a form carrying the token, with no script allowed and nothing cached', async () => {
    const page = await app.inject({ method: 'GET', url: `/reset-password?token=${token}` });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body).toContain(`name="token" value="${token}"`);
    expect(page.body).toContain('method="post"');
  });

  it('refuses a token that is not one, before any HTML is made of it', async () => {
    const page = await app.inject({ method: 'GET', url: `/reset-password?token=${encodeURIComponent('"><script>alert(1)</script>')}` });
    expect(page.statusCode).toBe(400);
    expect(page.body).not.toContain('<script>');
  });

  it('asks again for a short password without using the link', async () => {
    const answer = await app.inject({ method: 'POST', url: '/reset-password', ...form({ token, password: 'short' }) });
    expect(answer.statusCode).toBe(400);
    expect(answer.body).toContain('at least 12 characters');
    expect(answer.body).toContain(`value="${token}"`);
  });

  it('changes the password from the posted form, once', async () => {
    const answer = await app.inject({ method: 'POST', url: '/reset-password', ...form({ token, password: 'a password from the page' }) });
    expect(answer.statusCode).toBe(200);
    expect(answer.body).toContain('Password changed');
    expect((await login(app, ADMIN.email, 'a password from the page')).statusCode).toBe(200);
    expect((await login(app, ADMIN.email, ADMIN.password)).statusCode).toBe(401);

    const again = await app.inject({ method: 'POST', url: '/reset-password', ...form({ token, password: 'yet another password' }) });
    expect(again.statusCode).toBe(400);
    expect(again.body).toContain('This link cannot be used');
  });
});

describe('the reset page posted by a client other than its form', async () => {
  const { app } = await startIam();
  afterAll(() => app.close());

  it('answers problem+json naming the field', async () => {
    const short = await app.inject({ method: 'POST', url: '/reset-password', payload: { token: 'abc', password: 'short' } });
    expect(short.headers['content-type']).toContain('application/problem+json');
    expect(short.json()).toMatchObject({ status: 400, errors: [{ field: 'body.password' }] });
    const unknown = await app.inject({ method: 'POST', url: '/reset-password', payload: { token: 'abc', password: 'long enough password' } });
    expect(unknown.json()).toMatchObject({ status: 400, errors: [{ field: 'body.token' }] });
  });
});

describe('the reset page posted a hostile form', async () => {
  const { app } = await startIam();
  afterAll(() => app.close());
  const post = (payload: string, type = 'application/x-www-form-urlencoded') =>
    app.inject({ method: 'POST', url: '/reset-password', headers: { 'content-type': type }, payload });

  it('refuses a field given twice instead of letting the last one win', async () => {
    const answer = await post('token=a&token=b&password=long%20enough%20password');
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ code: 'BAD_REQUEST', errors: [{ field: 'body.token' }] });
  });

  it('answers the page to a form whose media type is spelled in capitals', async () => {
    const answer = await post('token=abc&password=short', 'Application/X-WWW-Form-Urlencoded');
    expect(answer.statusCode).toBe(400);
    expect(answer.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(answer.body).toContain('at least 12 characters');
  });

  it('answers 4xx, never a stack, to NUL bytes, a huge body, __proto__ and nesting', async () => {
    const answers = await Promise.all([
      post('token=ab%00c&password=long%20enough%20password'),
      post('token=abc&password=long%00enough%20password'),
      post(`token=abc&password=${'a'.repeat(10_000)}`),
      post('__proto__=x&token=abc&password=long%20enough%20password'),
      post('%%%&=&=='),
      post(`${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, 'application/json'),
      post('{"__proto__":{"x":1},"token":"abc","password":"long enough password"}', 'application/json'),
    ]);
    expect(answers.map((a) => a.statusCode)).toEqual([400, 400, 413, 400, 400, 400, 400]);
    for (const answer of answers) expect(answer.body).not.toMatch(/\.ts:\d+/);
  });
});
