import type { ColumnType, Generated } from 'kysely';

type Defaulted<T> = ColumnType<T, T | undefined, T>;

/** Columns most core tables share. */
interface AuditColumns {
  id: Generated<string>;
  version: Defaulted<number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
  created_by: string | null;
  updated_by: string | null;
}

interface SoftDeleted {
  deleted_at: Date | null;
}

export interface ResourceTable extends AuditColumns, SoftDeleted {
  reference_number: string;
  label_code: string | null;
  first_name: string;
  last_name: string;
  date_of_birth: string | null;
  gender: string | null;
  email: string | null;
  phone: string | null;
}

export interface ResourceAddressTable extends AuditColumns {
  resource_id: string;
  address_type: Defaulted<string>;
  address_line1: string;
  address_line2: string | null;
  city: string | null;
  postal_code: string | null;
  region_code: string | null;
  district_code: string | null;
  is_primary: Defaulted<boolean>;
}

export interface EngagementTable extends AuditColumns, SoftDeleted {
  resource_id: string;
  department_code: string | null;
  engagement_type: string;
  status: Defaulted<string>;
  started_at: Defaulted<Date>;
  ended_at: Date | null;
  notes: string | null;
}

export interface IntakeTable extends AuditColumns, SoftDeleted {
  resource_id: string;
  engagement_id: string | null;
  department_code: string | null;
  intake_at: Defaulted<Date>;
  priority: Defaulted<string>;
  reason: string;
}

export interface EntryTable extends AuditColumns {
  resource_id: string;
  engagement_id: string | null;
  entry_date: Defaulted<string>;
  classification_code: string | null;
  notes: string | null;
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

/** The core schema as Kysely sees it (the entity/ module reaches its tables through `sql`). */
export interface CoreDatabase {
  resources: ResourceTable;
  resource_addresses: ResourceAddressTable;
  engagements: EngagementTable;
  intakes: IntakeTable;
  entries: EntryTable;
  orders: OrderTable;
  order_code_counters: OrderCodeCounterTable;
}
