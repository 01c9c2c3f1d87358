import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Transporter } from 'nodemailer';
import { backingConfigSchemas, loadConfig } from '../config.ts';
import { repositoryRoot } from '../layout.ts';

/** One plain-text message to one recipient. */
export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

/** A message as the local mailbox keeps it. */
export interface StoredMail extends MailMessage {
  readonly id: string;
  readonly from: string;
  readonly date: string;
}

/**
 * Where mail goes: an SMTP server, or a local mailbox directory. Secrets sent by mail (reset
 * links) travel only through here, never through events, feeds or logs (docs/architecture.md#service-credentials-and-trust-boundaries).
 */
export interface Mailer {
  /** `smtp` or `mailbox`, and where to (without credentials), for start-up logs. */
  readonly describe: string;
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

/**
 * Sends through SMTP (`smtp://user:pass@host:587`, `smtps://…` for implicit TLS).
 *
 * @example
 * const mailer = smtpMailer({ url: 'smtp://mail.example.com:587', from: 'Archipelago <no-reply@example.com>' });
 */
export function smtpMailer(options: { url: string; from: string; timeoutMs?: number }): Mailer {
  const timeout = options.timeoutMs ?? 10_000;
  const target = new URL(options.url);
  // nodemailer is loaded at the first message: a process that never sends mail does not carry it.
  let transport: Promise<Transporter> | undefined;
  const open = async (): Promise<Transporter> => {
    const { default: nodemailer } = await import('nodemailer');
    return nodemailer.createTransport({ url: options.url, connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout });
  };
  return {
    describe: `smtp ${target.protocol}//${target.host}`,
    async send(message) {
      transport ??= open().catch((error: unknown) => {
        transport = undefined;
        throw error;
      });
      await (await transport).sendMail({ from: options.from, to: message.to, subject: message.subject, text: message.text });
    },
    async close() {
      (await transport)?.close();
    },
  };
}

/**
 * Keeps every message as a JSON file in `dir` (created 0700, each file 0600: readable by the
 * owner of the process only). The default when no SMTP server is configured; read it with
 * `npm run cli -- mail list|show <id>`.
 */
export function mailboxMailer(options: { dir: string; from: string }): Mailer {
  const dir = path.resolve(options.dir);
  let ready: Promise<void> | undefined;
  let sent = 0;
  const prepare = async () => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700); // an existing directory, or one made under a permissive umask
  };
  return {
    describe: `mailbox ${dir}`,
    async send(message) {
      ready ??= prepare().catch((error: unknown) => {
        ready = undefined;
        throw error;
      });
      await ready;
      const date = new Date().toISOString();
      sent += 1; // orders messages written within one millisecond
      const id = `${date.replace(/[-:.]/g, '')}-${String(sent % 1_000_000).padStart(6, '0')}-${randomUUID().slice(0, 4)}`;
      const mail: StoredMail = { id, from: options.from, date, to: message.to, subject: message.subject, text: message.text };
      const partial = path.join(dir, `.${id}.tmp`);
      await writeFile(partial, `${JSON.stringify(mail, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      await rename(partial, path.join(dir, `${id}.json`));
    },
    async close() {},
  };
}

/** Messages in a mailbox directory, oldest first (an absent directory is an empty mailbox). */
export async function readMailbox(dir: string): Promise<StoredMail[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return [];
    throw error;
  }
  const files = names.filter((name) => name.endsWith('.json')).sort();
  return Promise.all(files.map(async (name) => JSON.parse(await readFile(path.join(dir, name), 'utf8')) as StoredMail));
}

/** Where the mailbox is when `MAIL_DIR` is unset: `.data/mail` of the checkout. */
export const DEFAULT_MAIL_DIR = path.join(repositoryRoot, '.data', 'mail');

/** The mailer the environment asks for: SMTP with `SMTP_URL`, else the mailbox in `MAIL_DIR`. */
export function mailerFromEnv(env: Readonly<Record<string, string | undefined>>): Mailer {
  const config = loadConfig(backingConfigSchemas.mail, env);
  if (config.SMTP_URL) return smtpMailer({ url: config.SMTP_URL, from: config.MAIL_FROM });
  return mailboxMailer({ dir: config.MAIL_DIR ?? DEFAULT_MAIL_DIR, from: config.MAIL_FROM });
}
