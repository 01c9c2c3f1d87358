import type { ColumnType, Generated, Selectable } from 'kysely';
import type { PolicyCondition, PolicyEffect } from '@archipelago/platform/auth';

export interface PolicyTable {
  id: Generated<string>;
  name: string;
  description: ColumnType<string, string | undefined, string>;
  effect: PolicyEffect;
  permission: string;
  role_id: string | null;
  condition: ColumnType<PolicyCondition, PolicyCondition | undefined, PolicyCondition>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export type PolicyRow = Selectable<PolicyTable>;
