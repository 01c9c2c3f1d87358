import { sql, type Kysely } from 'kysely';

// Orders of a department (department_code instead of department_id: departments are master data).
// Codes ORD-YYYY-NNNNNN come from one counter row per year, taken in the order's transaction:
// unique and without gaps, even under concurrent creates.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE order_code_counters (
      year       integer PRIMARY KEY,
      last_value bigint NOT NULL
    )`.execute(db);
  await sql`
    CREATE TABLE orders (
      id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      order_code      varchar(20) NOT NULL UNIQUE,
      item_name       varchar(100) NOT NULL,
      quantity        integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
      status          varchar(20) NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'CANCELLED')),
      department_code varchar(20) NOT NULL,
      resource_id     uuid REFERENCES resources (id),
      ordered_at      timestamptz NOT NULL DEFAULT now(),
      completed_at    timestamptz,
      cancelled_at    timestamptz,
      version         bigint NOT NULL DEFAULT 1,
      created_at      timestamptz NOT NULL DEFAULT now(),
      updated_at      timestamptz NOT NULL DEFAULT now(),
      created_by      uuid,
      updated_by      uuid
    )`.execute(db);
  await sql`CREATE INDEX idx_orders_status ON orders (status)`.execute(db);
  await sql`CREATE INDEX idx_orders_ordered_at ON orders (ordered_at)`.execute(db);
  await sql`CREATE INDEX idx_orders_department_code ON orders (department_code)`.execute(db);
  await sql`CREATE INDEX idx_orders_resource_id ON orders (resource_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE orders, order_code_counters`.execute(db);
}
