import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { CoreDatabase, OrderStatus, OrderTable } from '../database.ts';

export type Order = Selectable<OrderTable>;
export type NewOrder = Omit<Insertable<OrderTable>, 'id' | 'version' | 'status' | 'completed_at' | 'cancelled_at' | 'updated_by'>;

export interface OrderFilters {
  readonly status?: OrderStatus;
  readonly department_code?: string;
  readonly resource_id?: string;
  readonly order_code?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The only code that reads or writes orders and their code counters. */
export function orderRepository(db: Kysely<CoreDatabase>) {
  const filtered = (filters: OrderFilters) => {
    let query = db.selectFrom('orders');
    if (filters.status) query = query.where('status', '=', filters.status);
    if (filters.department_code) query = query.where('department_code', '=', filters.department_code);
    if (filters.resource_id) query = query.where('resource_id', '=', filters.resource_id);
    if (filters.order_code) query = query.where('order_code', '=', filters.order_code);
    return query;
  };
  return {
    async list(options: OrderFilters & { limit: number; offset: number }): Promise<{ items: Order[]; total: number }> {
      const query = filtered(options);
      const [items, count] = await Promise.all([
        query.selectAll().orderBy('ordered_at', 'desc').orderBy('order_code', 'desc').limit(options.limit).offset(options.offset).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items, total: Number(count.total) };
    },
    /** An order by its uuid or its code; undefined for anything else. */
    async findByIdOrCode(key: string): Promise<Order | undefined> {
      if (UUID.test(key)) return db.selectFrom('orders').selectAll().where('id', '=', key).executeTakeFirst();
      return db.selectFrom('orders').selectAll().where('order_code', '=', key).executeTakeFirst();
    },
    /**
     * The next number of a year, from its counter row. The row stays locked until the
     * transaction ends, so concurrent creates queue here and numbers have no gaps.
     */
    async nextNumber(trx: Transaction<CoreDatabase>, year: number): Promise<number> {
      const row = await trx
        .insertInto('order_code_counters')
        .values({ year, last_value: 1 })
        .onConflict((oc) => oc.column('year').doUpdateSet({ last_value: sql<number>`order_code_counters.last_value + 1` }))
        .returning('last_value')
        .executeTakeFirstOrThrow();
      return Number(row.last_value);
    },
    /** Orders by id after `after`, for the export lookup copies are reconciled from. */
    async exportAfter(after: string | undefined, limit: number): Promise<Order[]> {
      let query = db.selectFrom('orders').selectAll().orderBy('id').limit(limit);
      if (after !== undefined) query = query.where('id', '>', after);
      return query.execute();
    },
    async insert(trx: Transaction<CoreDatabase>, order: NewOrder): Promise<Order> {
      return trx.insertInto('orders').values({ ...order, updated_by: order.created_by }).returningAll().executeTakeFirstOrThrow();
    },
    async lockById(trx: Transaction<CoreDatabase>, id: string): Promise<Order | undefined> {
      return trx.selectFrom('orders').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    },
    /** Sets a status (and completed_at or cancelled_at with it) and bumps the version. */
    async setStatus(trx: Transaction<CoreDatabase>, id: string, status: OrderStatus, userId: string | null): Promise<Order> {
      return trx
        .updateTable('orders')
        .set({
          status,
          ...(status === 'COMPLETED' ? { completed_at: sql<Date>`now()` } : {}),
          ...(status === 'CANCELLED' ? { cancelled_at: sql<Date>`now()` } : {}),
          updated_by: userId,
          version: sql<number>`version + 1`,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
    },
  };
}

export type OrderRepository = ReturnType<typeof orderRepository>;
