import type { ColumnType } from 'kysely';
import type { CrudAuditColumns, CrudTableType } from '@archipelago/platform/crud';
import type { addresses, engagements, entries, intakes, resources } from './catalog.ts';

type Defaulted<T> = ColumnType<T, T | undefined, T>;

export type OrderStatus = 'PENDING' | 'PROCESSING' | 'COMPLETED' | 'CANCELLED';

// Orders, with their status machine, are written by hand (orders/); their audit columns are the CRUD tables'.
export interface OrderTable extends CrudAuditColumns {
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
