import type { Kysely } from 'kysely';
import type { SubscriptionMode } from '@archipelago/registry';
import type { HttpServer } from '../http.ts';
import type { EventEnvelope } from './envelope.ts';

/** A producing service, as a transport sees it: its outbox and its HTTP server. */
export interface Producer<DB = unknown> {
  /** Registry key, e.g. `masterdata`. */
  readonly source: string;
  /** Schema of the outbox table (the service's schema). */
  readonly schema: string;
  readonly db: Kysely<DB>;
  readonly app: HttpServer;
  /** The service's own database URL, for a LISTEN connection (wake-ups). */
  readonly listenUrl?: string;
}

/**
 * The events a consumer asked for are gone (the producer's retention pruned them). It must
 * resynchronise some other way (a lookup reconciles from the export), then read after `prunedThrough`.
 */
export class EventsPruned extends Error {
  constructor(readonly prunedThrough: string) {
    super(`events up to ${prunedThrough} were pruned by the producer`);
    this.name = 'EventsPruned';
  }
}

/** Receives one producer's events for one consumer group, or for one instance (broadcast). */
export interface Subscription {
  readonly mode: SubscriptionMode;
  /**
   * Events committed after `after` (the consumer's position), oldest first, at most `limit`;
   * waits up to `waitMs` for the first. Undefined `after` means from the start for a group, and
   * for a broadcast from where the subscription started (the first receive fixes "now"). After a
   * crash the same events may come again: group consumers apply them idempotently. Throws
   * `EventsPruned` when events after `after` are no longer kept.
   */
  receive(after: string | undefined, options: { limit: number; waitMs: number; signal: AbortSignal }): Promise<EventEnvelope[]>;
  /** Called once the events are applied and their position committed in the consumer's DB. */
  acknowledge(events: readonly EventEnvelope[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Carries committed outbox events from producers to consumers (docs/architecture.md#events-and-the-outbox). Every transport
 * passes the same conformance suite (`@archipelago/platform/testing`'s `describeTransportConformance`):
 * per-aggregate order, no loss, redelivery after a crash, dead-lettering, broadcast to every instance.
 */
export interface EventTransport {
  readonly name: string;
  /** Producer side: starts handing the producer's committed outbox rows on. */
  publish(producer: Producer): Promise<void>;
  /**
   * Consumer side: `group` (e.g. `core.lookups.masterdata`) receives the events of `source`. In
   * `group` mode (the default) the group's instances share one position; in `broadcast` mode
   * each subscription receives every event committed after it started, whatever the others do.
   */
  subscribe(options: { source: string; group: string; mode?: SubscriptionMode }): Subscription;
}
