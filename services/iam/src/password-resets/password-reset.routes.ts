import Type from 'typebox';
import type { HttpServer } from '@archipelago/platform';
import { clientOf, metadataOf } from '../http/request.ts';
import { Email, NewPassword } from '../http/schemas.ts';
import type { PasswordResetService } from './password-reset.service.ts';

/** Public: request a reset link (same answer for every email), confirm with a new password. */
export function passwordResetRoutes(app: HttpServer, service: PasswordResetService): void {
  app.post(
    '/api/v1/auth/password-reset/request',
    { schema: { tags: ['auth'], body: Type.Object({ email: Email }, { additionalProperties: false }), response: { 202: Type.Object({ status: Type.String() }) } } },
    async (request, reply) => {
      await service.request(request.body.email, clientOf(request).ip, metadataOf(request));
      return reply.status(202).send({ status: 'If the address belongs to an account, a reset link is on its way.' });
    },
  );
  app.post(
    '/api/v1/auth/password-reset/confirm',
    { schema: { tags: ['auth'], body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }), password: NewPassword }, { additionalProperties: false }) } },
    async (request, reply) => {
      await service.confirm(request.body.token, request.body.password, clientOf(request).ip);
      return reply.status(204).send();
    },
  );
}
