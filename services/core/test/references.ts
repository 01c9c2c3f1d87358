import { AppError } from '@archipelago/platform';
import type { TestDatabase } from '@archipelago/platform/testing';
import type { References } from '../src/references.ts';

// Stand-in for the platform's validator until it is merged: codes of the seed's master data are valid.
const known: Record<string, string[]> = {
  label: ['MR', 'MRS', 'MISS', 'DR'],
  region: ['US-CA', 'US-WA', 'US-NY', 'US-MA', 'US-IL', 'US-TX'],
  district: ['US-CA-LA', 'US-CA-SF', 'US-CA-SD', 'US-WA-KING', 'US-NY-KINGS', 'US-NY-NY', 'US-IL-COOK', 'US-TX-HARRIS'],
  department: ['CARDIO', 'ENDO', 'RADIO', 'LAB', 'PHARM', 'ER'],
  'classification-code': ['E11.9', 'E78.5', 'I10', 'J45.909', 'M54.5', 'F41.1'],
};

export async function testReferences(_database: TestDatabase): Promise<References> {
  return {
    async check(checks) {
      const bad = checks.filter((c) => c.value !== null && c.value !== undefined && !known[c.ref]?.includes(c.value));
      if (bad.length > 0) throw new AppError('UNPROCESSABLE_REFERENCE', 'unknown reference', { fields: bad.map((c) => ({ field: c.field, message: `no such ${c.ref}`, value: c.value })) });
    },
  };
}
