import { isFinal, type GatewayClient } from './client.ts';
import { isOk, sleep, type Outcome } from './timeline.ts';

/** A label the generator created, and what it was last told about it. */
export interface LabelEntry {
  readonly code: string;
  created?: Outcome;
  /** The content of the last acknowledged change (create or update). */
  expected?: { label: string; display_order: number };
  /** A change whose outcome stayed unknown: its content is not predicted. */
  uncertain: boolean;
  updates: number;
}

export type OrderStatus = 'PENDING' | 'PROCESSING' | 'COMPLETED' | 'CANCELLED';

/** An order the generator created and the status it was last acknowledged in. */
export interface OrderEntry {
  readonly marker: string;
  created?: Outcome;
  id?: string;
  status: OrderStatus;
  uncertain: boolean;
}

/** Everything the generator sent, with what it was told. */
export interface Ledger {
  readonly labels: LabelEntry[];
  readonly orders: OrderEntry[];
}

export const DEPARTMENT = 'LAB';

// Most orders are completed (notifications to the department and to their creator), every fourth cancelled (to the creator).
const nextStatus = (order: OrderEntry, index: number): OrderStatus | undefined => {
  if (order.status === 'PENDING') return index % 4 === 3 ? 'CANCELLED' : 'PROCESSING';
  if (order.status === 'PROCESSING') return 'COMPLETED';
  return undefined;
};

/**
 * A steady stream through the gateway from `workers` loops: label creates and updates, order
 * creates and status changes (each worker changes only what it created, one request at a time, so
 * the last acknowledged change of each is known), and reads. Writes carry Idempotency-Keys and are
 * retried while their outcome is unknown.
 */
export function startGenerator(client: GatewayClient, ledger: Ledger, run: string, workers: number): { stop(): Promise<void> } {
  let running = true;
  let counter = 0;
  const worker = async (index: number) => {
    const labels: LabelEntry[] = [];
    const orders: OrderEntry[] = [];
    for (let step = index; running; step++) {
      const pick = step % 6;
      let outcome: Outcome;
      if (pick === 0 || (pick === 1 && labels.length === 0)) {
        const entry: LabelEntry = { code: `F${run}${(counter++).toString(36).toUpperCase()}`, uncertain: false, updates: 0 };
        ledger.labels.push(entry);
        outcome = entry.created = (await client.write('POST', '/api/v1/labels', { code: entry.code, label: 'Fault run', display_name: 'Fault run', display_order: 0 }, `label-${entry.code}`)).outcome;
        if (isOk(outcome)) entry.expected = { label: 'Fault run', display_order: 0 };
        else if (!isRefused(outcome)) entry.uncertain = true;
        if (isOk(outcome)) labels.push(entry);
      } else if (pick === 1) {
        const entry = labels[step % labels.length]!;
        const change = { label: `Fault run v${++entry.updates}`, display_order: entry.updates };
        outcome = (await client.write('PATCH', `/api/v1/labels/${entry.code}`, change, `label-${entry.code}-v${entry.updates}`)).outcome;
        if (isOk(outcome) && !entry.uncertain) entry.expected = change;
        else if (!isRefused(outcome)) entry.uncertain = true;
      } else if (pick === 2) {
        const entry: OrderEntry = { marker: `fault-${run}-${counter++}`, status: 'PENDING', uncertain: false };
        ledger.orders.push(entry);
        const answer = await client.write('POST', '/api/v1/orders', { item_name: entry.marker, department_code: DEPARTMENT }, `order-${entry.marker}`);
        outcome = entry.created = answer.outcome;
        if (isOk(outcome)) {
          entry.id = (answer.body as { id: string }).id;
          orders.push(entry);
        } else if (!isRefused(outcome)) entry.uncertain = true;
      } else if (pick === 3 && orders.length > 0) {
        const open = orders.findIndex((o) => !o.uncertain && nextStatus(o, ledger.orders.indexOf(o)) !== undefined);
        if (open < 0) continue;
        const order = orders[open]!;
        const status = nextStatus(order, ledger.orders.indexOf(order))!;
        outcome = (await client.write('POST', `/api/v1/orders/${order.id}/status`, { status }, `order-${order.marker}-${status}`)).outcome;
        if (isOk(outcome)) order.status = status;
        else if (!isRefused(outcome)) order.uncertain = true;
        if (nextStatus(order, ledger.orders.indexOf(order)) === undefined || order.uncertain) orders.splice(open, 1);
      } else {
        outcome = (await client.send('GET', pick === 4 ? '/api/v1/orders?limit=20' : '/api/v1/labels?limit=20')).outcome;
      }
      if (!isOk(outcome)) await sleep(100); // as a polite client would
    }
  };
  const loops = Array.from({ length: workers }, (_, i) => worker(i));
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

// Refused before any effect: a final 4xx (a 409 "in progress" that outlived the retries is not).
const isRefused = (outcome: Outcome) => isFinal(outcome) && !isOk(outcome);
