import { loadConfig } from '@archipelago/platform';
import { serviceDefinitions } from '@archipelago/registry';
import { mailboxMailer, mailerFromEnv, DEFAULT_MAIL_DIR, type Mailer } from '@archipelago/platform/mail';
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
  /** Where reset links are mailed (never an event or a log line). */
  readonly mailer: Mailer;
  /** Sign-in failures of one account from one address: the guesser is slowed, nobody else. */
  readonly pairThrottle: ThrottleRule;
  /** Failures of one account from every address (a distributed guess); spares the account's known addresses. */
  readonly accountThrottle: ThrottleRule;
  /** Failures from one address across every account. */
  readonly ipThrottle: ThrottleRule;
  /** Reset requests per account and per address; over the limit the answer is the same, nothing is sent. */
  readonly resetAccountThrottle: ThrottleRule;
  readonly resetIpThrottle: ThrottleRule;
  /** Master data's base URL: a user's department_code must name a live department there. */
  readonly masterdataUrl: string;
  readonly auditRetentionDays: number;
  readonly now: () => number;
}

const declared = loadConfig(serviceDefinitions.iam.config, {});

export const defaultIamSettings: IamSettings = {
  accessTtlSeconds: declared.JWT_ACCESS_TTL_SECONDS,
  sessionTtlDays: 30,
  publishLeadSeconds: declared.JWT_PUBLISH_LEAD_SECONDS,
  passwordResetUrl: declared.PASSWORD_RESET_URL,
  passwordResetTtlMinutes: 30,
  mailer: mailboxMailer({ dir: DEFAULT_MAIL_DIR, from: 'Archipelago <no-reply@localhost>' }),
  pairThrottle: { maxFailures: 5, windowSeconds: 900, lockSeconds: 30, maxLockSeconds: 900 },
  accountThrottle: { maxFailures: 20, windowSeconds: 900, lockSeconds: 60, maxLockSeconds: 900 },
  ipThrottle: { maxFailures: 50, windowSeconds: 900, lockSeconds: 900, maxLockSeconds: 900 },
  resetAccountThrottle: { maxFailures: 3, windowSeconds: 3600, lockSeconds: 3600, maxLockSeconds: 3600 },
  resetIpThrottle: { maxFailures: 20, windowSeconds: 3600, lockSeconds: 3600, maxLockSeconds: 3600 },
  masterdataUrl: 'http://127.0.0.1:4102',
  auditRetentionDays: 730,
  now: Date.now,
};

/** IAM's settings from its environment, through the variables its registry entry declares. */
export function iamSettingsFromEnv(env: Readonly<Record<string, string | undefined>>, masterdataUrl: string): IamSettings {
  const config = loadConfig(serviceDefinitions.iam.config, env);
  return {
    ...defaultIamSettings,
    accessTtlSeconds: config.JWT_ACCESS_TTL_SECONDS,
    publishLeadSeconds: config.JWT_PUBLISH_LEAD_SECONDS,
    signingKeySecret: config.IAM_SIGNING_KEY_SECRET,
    passwordResetUrl: config.PASSWORD_RESET_URL,
    masterdataUrl,
    mailer: mailerFromEnv(env),
  };
}
