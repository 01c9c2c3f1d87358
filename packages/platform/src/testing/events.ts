import { sql, type Kysely } from 'kysely';
import type { EventMetadata } from '../events/envelope.ts';
import { asPrincipal, OPERATOR } from './credentials.ts';
import type { Injectable } from './identity.ts';

/** An event as a producer's outbox holds it. */
export interface RecordedEvent {
  readonly type: string;
  readonly aggregate: { readonly type: string; readonly id: string; readonly version: number };
  readonly payload: never;
  readonly metadata: EventMetadata;
}

/**
 * Every event in a service's outbox, in feed order, read directly. (The feed itself holds events
 * back while any transaction on the cluster, e.g. another test file's, is still running.)
 * `T` narrows the shape a test expects.
 */
export async function recordedEvents<T = RecordedEvent>(db: Kysely<unknown>): Promise<T[]> {
  const { rows } = await sql<{ type: string; aggregate_type: string; aggregate_id: string; aggregate_version: number; payload: never; metadata: EventMetadata }>`
    SELECT type, aggregate_type, aggregate_id, aggregate_version, payload, metadata FROM outbox ORDER BY tx_id, seq`.execute(db);
  return rows.map((row) => ({
    type: row.type,
    aggregate: { type: row.aggregate_type, id: row.aggregate_id, version: row.aggregate_version },
    payload: row.payload,
    metadata: row.metadata,
  })) as T[];
}

/**
 * Follows a service's HTTP feed, as a consumer would, until an event matches (bounded: ~30 s).
 * Reads as the operator unless told `as` which principal (one the feed must allow).
 */
export async function followFeed<T extends { position: string }>(app: Injectable, match: (event: T) => boolean, options: { as?: string } = {}): Promise<T | undefined> {
  const reader = asPrincipal(app, options.as ?? OPERATOR);
  let after = '';
  for (let round = 0; round < 30; round++) {
    const { events } = (await reader.inject({ url: `/internal/v1/events?limit=1000&waitMs=1000${after ? `&after=${after}` : ''}` })).json<{ events: T[] }>();
    const found = events.find(match);
    if (found) return found;
    after = events.at(-1)?.position ?? after;
  }
  return undefined;
}
