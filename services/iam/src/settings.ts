import Type from 'typebox';
import { loadConfig } from '@archipelago/platform';
import type { ThrottleRule } from './sessions/session.repository.ts';

/** What IAM's behaviour depends on; every field has a default, tests override a few. */
export interface IamSettings {
  readonly accessTtlSeconds: number;
  readonly sessionTtlDays: number;
  readonly publishLeadSeconds: number;
  readonly signingKeySecret?: string;
  /** The reset link is this URL with the token appended. */
  readonly passwordResetUrl: string;
  readonly passwordResetTtlMinutes: number;
  readonly accountThrottle: ThrottleRule;
  readonly ipThrottle: ThrottleRule;
  readonly auditRetentionDays: number;
  readonly now: () => number;
}

export const defaultIamSettings: IamSettings = {
  accessTtlSeconds: 600,
  sessionTtlDays: 30,
  publishLeadSeconds: 60,
  passwordResetUrl: 'http://127.0.0.1:4110/reset-password?token=',
  passwordResetTtlMinutes: 30,
  accountThrottle: { maxFailures: 5, windowSeconds: 900, lockSeconds: 900 },
  ipThrottle: { maxFailures: 50, windowSeconds: 900, lockSeconds: 900 },
  auditRetentionDays: 730,
  now: Date.now,
};

const iamConfigSchema = Type.Object({
  JWT_ACCESS_TTL_SECONDS: Type.Integer({ minimum: 30, maximum: 86_400, default: defaultIamSettings.accessTtlSeconds }),
  JWT_PUBLISH_LEAD_SECONDS: Type.Integer({ minimum: 0, maximum: 86_400, default: defaultIamSettings.publishLeadSeconds }),
  IAM_SIGNING_KEY_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  PASSWORD_RESET_URL: Type.String({ default: defaultIamSettings.passwordResetUrl }),
});

/** IAM's settings from its environment (see .env.example). */
export function iamSettingsFromEnv(env: Readonly<Record<string, string | undefined>>): IamSettings {
  const config = loadConfig(iamConfigSchema, env);
  return {
    ...defaultIamSettings,
    accessTtlSeconds: config.JWT_ACCESS_TTL_SECONDS,
    publishLeadSeconds: config.JWT_PUBLISH_LEAD_SECONDS,
    signingKeySecret: config.IAM_SIGNING_KEY_SECRET,
    passwordResetUrl: config.PASSWORD_RESET_URL,
  };
}
