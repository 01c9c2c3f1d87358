import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import { clientOf } from '../http/request.ts';
import type { PasswordResetService } from './password-reset.service.ts';

const TOKEN = Type.String({ pattern: '^[A-Za-z0-9_-]{1,200}$' });
// The form's own fields, so a browser checks them before it posts.
const PASSWORD_MIN = 12;
const PASSWORD_MAX = 256;

// A page with no script and no outside resource; the form may post only back here.
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
} as const;

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}label,input,button{display:block;width:100%;margin:.5rem 0}p.error{color:#a00}</style>
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function form(token: string, error?: string): string {
  return page(
    'Choose a new password',
    `${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="reset-password">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<label for="password">New password (at least ${PASSWORD_MIN} characters)</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="${PASSWORD_MIN}" maxlength="${PASSWORD_MAX}">
<button type="submit">Change password</button>
</form>`,
  );
}

/**
 * The page a reset link opens (public, through the gateway): a plain HTML form that posts the
 * token and the new password back to IAM, which confirms them like `POST /api/v1/auth/password-reset/confirm`.
 */
export function passwordResetPage(app: HttpServer, service: PasswordResetService): void {
  void app.register(async (plugin) => {
    const scope = plugin as HttpServer;
    // Browsers post forms url-encoded; only this route reads that type.
    // A field given twice is refused, as a repeated query parameter is, rather than the last one winning.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
      const fields: Record<string, string> = {};
      for (const [name, value] of new URLSearchParams(body as string)) {
        if (Object.hasOwn(fields, name)) {
          done(new AppError('BAD_REQUEST', `The form gives ${name} more than once`, { fields: [{ field: `body.${name}`, message: 'must be given once' }] }), undefined);
          return;
        }
        Object.defineProperty(fields, name, { value, enumerable: true, writable: true, configurable: true });
      }
      done(null, fields);
    });
    scope.get(
      '/reset-password',
      { schema: { tags: ['auth'], summary: 'the page a reset link opens (HTML)', querystring: Type.Object({ token: TOKEN }) } },
      async (request, reply) => reply.headers(PAGE_HEADERS).send(form(request.query.token)),
    );
    scope.post(
      '/reset-password',
      {
        schema: {
          tags: ['auth'],
          summary: 'the reset page posts its form here (HTML)',
          body: Type.Object({ token: TOKEN, password: Type.String({ maxLength: PASSWORD_MAX }) }),
        },
      },
      async (request, reply) => {
        const { token, password } = request.body;
        // The page's form posts url-encoded; any other client gets problem+json like the API.
        const fromPage = request.headers['content-type']?.toLowerCase().startsWith('application/x-www-form-urlencoded') === true;
        if (password.length < PASSWORD_MIN) {
          if (!fromPage) throw new AppError('VALIDATION_FAILED', 'The password is too short', { fields: [{ field: 'body.password', message: `needs at least ${PASSWORD_MIN} characters` }] });
          return reply.status(400).headers(PAGE_HEADERS).send(form(token, `The password needs at least ${PASSWORD_MIN} characters.`));
        }
        try {
          await service.confirm(token, password, clientOf(request).ip);
        } catch (error) {
          if (fromPage && error instanceof AppError && error.status < 500) {
            return reply.status(error.status).headers(PAGE_HEADERS).send(page('This link cannot be used', `<p class="error">${escapeHtml(error.message)}.</p><p>Ask for a new reset link.</p>`));
          }
          throw error;
        }
        return reply.headers(PAGE_HEADERS).send(page('Password changed', '<p>Your password is changed and your other sessions are signed out. Sign in with the new password.</p>'));
      },
    );
  });
}
