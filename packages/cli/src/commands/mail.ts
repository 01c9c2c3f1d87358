import { StartupError } from '@archipelago/platform/startup';
import { readMailbox } from '@archipelago/platform/mail';
import { mailDirectory } from '../stack.ts';

export type MailAction = 'list' | 'show';

/**
 * `archipelago mail list|show <id>`: reads IAM's local mailbox (`<data>/mail`, or `MAIL_DIR`), where
 * reset links go when no SMTP server is configured. Only the owner of the data directory can read it.
 */
export async function mail(action: MailAction, id: string | undefined, env: Readonly<Record<string, string | undefined>>, say: (line: string) => void): Promise<number> {
  const dir = mailDirectory(env);
  if (env.SMTP_URL) say(`SMTP_URL is set: new mail goes to that server, not to ${dir}.`);
  let messages;
  try {
    messages = await readMailbox(dir);
  } catch (error) {
    throw new StartupError(`Cannot read the mailbox ${dir}: ${(error as Error).message}`, { cause: error });
  }
  if (action === 'list') {
    if (messages.length === 0) say(`No mail in ${dir}.`);
    for (const message of messages) say(`${message.id}  ${message.date}  ${message.to}  ${message.subject}`);
    return 0;
  }
  const message = id === undefined ? messages.at(-1) : messages.find((m) => m.id === id);
  if (!message) {
    say(id === undefined ? `No mail in ${dir}.` : `No message ${id} in ${dir} (see: mail list).`);
    return 1;
  }
  say(`From: ${message.from}\nTo: ${message.to}\nDate: ${message.date}\nSubject: ${message.subject}\n\n${message.text}`);
  return 0;
}
