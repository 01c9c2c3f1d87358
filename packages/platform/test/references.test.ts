import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { AppError } from '../src/errors.ts';
import { cachedReferences, createReferenceValidator, lookupReferences } from '../src/references/index.ts';
import { useTestDatabase } from '../src/testing/index.ts';

const rejection = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    return error as AppError;
  }
  throw new Error('expected a rejection');
};

describe('application-layer foreign keys', async () => {
  const core = await useTestDatabase('core');
  await sql`INSERT INTO labels_lookup (code, label, display_name, is_active, source_version) VALUES
            ('MR', 'Mr.', 'Mister', true, 1), ('OLD', 'Old', 'Old', false, 2)`.execute(core.db);
  const asked: string[][] = [];
  let ownerUp = true;
  let now = 0;
  const users = cachedReferences({
    owner: 'iam',
    ttlMs: 1_000,
    negativeTtlMs: 100,
    now: () => now,
    resolve: async (ids) => {
      if (!ownerUp) throw new Error('connect ECONNREFUSED');
      asked.push([...ids]);
      return new Set(ids.filter((id) => id.startsWith('user-')));
    },
  });
  const references = createReferenceValidator({ label: lookupReferences(core.db, 'labels_lookup', { owner: 'masterdata' }), user: users });

  it('accepts existing references and skips absent ones', async () => {
    await references.check([
      { field: 'body.label_code', value: 'MR', ref: 'label' },
      { field: 'body.created_by', value: 'user-1', ref: 'user' },
      { field: 'body.reviewer', value: null, ref: 'user' },
    ]);
  });

  it('rejects unknown and inactive codes with a 422 naming each field and value', async () => {
    const error = await rejection(references.check([
      { field: 'body.label_code', value: 'XX', ref: 'label' },
      { field: 'body.previous_label', value: 'OLD', ref: 'label' },
      { field: 'body.created_by', value: 'nobody', ref: 'user' },
    ]));
    expect(error).toMatchObject({ status: 422, code: 'UNPROCESSABLE_REFERENCE' });
    expect(error.fields).toEqual([
      { field: 'body.label_code', message: 'no active label has this value', value: 'XX' },
      { field: 'body.previous_label', message: 'no active label has this value', value: 'OLD' },
      { field: 'body.created_by', message: 'no active user has this value', value: 'nobody' },
    ]);
  });

  it('asks the owner once for ids wanted by concurrent requests, and caches answers', async () => {
    asked.length = 0;
    await Promise.all(['user-2', 'user-3', 'user-2', 'user-4'].map((id) => references.check([{ field: 'body.user', value: id, ref: 'user' }])));
    expect(asked).toEqual([['user-2', 'user-3', 'user-4']]);
    await references.check([{ field: 'body.user', value: 'user-3', ref: 'user' }]);
    expect(asked).toHaveLength(1);
  });

  it('forgets an answer when it expires or the owner announces a change', async () => {
    asked.length = 0;
    users.invalidate('user-2');
    await references.check([{ field: 'body.user', value: 'user-2', ref: 'user' }]);
    expect(asked).toEqual([['user-2']]);
    now += 1_001; // every cached answer expired
    await references.check([{ field: 'body.user', value: 'user-3', ref: 'user' }]);
    expect(asked).toEqual([['user-2'], ['user-3']]);
  });

  it('answers 503 when the owner cannot be asked, and caches no failure', async () => {
    ownerUp = false;
    const error = await rejection(references.check([{ field: 'body.user', value: 'user-9', ref: 'user' }]));
    expect(error).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(error.message).toContain('iam did not answer');
    ownerUp = true;
    await references.check([{ field: 'body.user', value: 'user-9', ref: 'user' }]);
  });
});
