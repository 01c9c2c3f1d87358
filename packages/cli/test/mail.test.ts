import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mailboxMailer } from '@archipelago/platform/mail';
import { mail } from '../src/commands/mail.ts';

describe('archipelago mail', async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cli-mail-'));
  afterAll(() => rm(dataDir, { recursive: true, force: true }));
  const run = async (action: 'list' | 'show', id?: string) => {
    const lines: string[] = [];
    const code = await mail(action, id, { ARCHIPELAGO_DATA_DIR: dataDir }, (line) => lines.push(line));
    return { code, out: lines.join('\n') };
  };

  it('lists and shows the messages of the local mailbox in the data directory', async () => {
    expect(await run('list')).toEqual({ code: 0, out: `No mail in ${path.join(dataDir, 'mail')}.` });
    const mailer = mailboxMailer({ dir: path.join(dataDir, 'mail'), from: 'iam@test' });
    await mailer.send({ to: 'ada@example.com', subject: 'First', text: 'one' });
    await mailer.send({ to: 'bob@example.com', subject: 'Reset your password', text: 'http://127.0.0.1:4110/reset-password?token=abc' });
    const listed = await run('list');
    const ids = listed.out.split('\n').map((line) => line.split(' ')[0]!);
    expect(ids).toHaveLength(2);
    expect(listed.out).toMatch(/ada@example\.com {2}First\n.*bob@example\.com {2}Reset your password$/);
    expect((await run('show')).out).toContain('token=abc');
    expect((await run('show', ids[0])).out).toMatch(/^From: iam@test\nTo: ada@example\.com\n.*\nSubject: First\n\none$/);
    expect(await run('show', 'no-such-id')).toMatchObject({ code: 1 });
  });
});
