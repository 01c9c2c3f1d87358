import type { ColumnType, Generated } from 'kysely';
import type { CrudTableType } from '@archipelago/platform/crud';
import type { addresses, engagements, entries, intakes, resources } from './catalog.ts';

type Defaulted<T> = ColumnType<T, T | undefined, T>;

/** Columns of orders shared with the CRUD tables. */
interface AuditColumns {
  id: Generated<string>;
  version: Defaulted<number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
  created_by: string | null;
  updated_by: string | null;
}

export type OrderStatus = 'PENDING' | 'PROCESSING' | 'COMPLETED' | 'CANCELLED';

export interface OrderTable extends AuditColumns {
  order_code: string;
  item_name: string;
  quantity: Defaulted<number>;
  status: Defaulted<OrderStatus>;
  department_code: string;
  resource_id: string | null;
  ordered_at: Defaulted<Date>;
  completed_at: Date | null;
  cancelled_at: Date | null;
}

export interface OrderCodeCounterTable {
  year: number;
  last_value: number;
}

/** The core schema as Kysely sees it: the CRUD tables derived from `catalog.ts`, orders written out. */
export interface CoreDatabase {
  resources: CrudTableType<typeof resources>;
  resource_addresses: CrudTableType<typeof addresses>;
  engagements: CrudTableType<typeof engagements>;
  intakes: CrudTableType<typeof intakes>;
  entries: CrudTableType<typeof entries>;
  orders: OrderTable;
  order_code_counters: OrderCodeCounterTable;
}
