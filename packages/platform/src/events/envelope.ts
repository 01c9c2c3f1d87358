/** Who caused an event; carried from the request that made the change. */
export interface EventMetadata {
  readonly userId?: string;
  readonly correlationId?: string;
  readonly causationId?: string;
}

/** An event as a producer records it, inside the transaction that makes the change. */
export interface NewEvent<Payload = unknown> {
  /** e.g. `label.created` */
  readonly type: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** The aggregate's version after this change; consumers use it to ignore stale events. */
  readonly aggregateVersion: number;
  readonly payload: Payload;
  readonly metadata?: EventMetadata;
}

/** An event as every consumer sees it (docs/architecture.md#events-and-the-outbox). */
export interface EventEnvelope<Payload = unknown> {
  /** UUIDv7 */
  readonly id: string;
  readonly type: string;
  /** Registry key of the producing service. */
  readonly source: string;
  readonly aggregate: { readonly type: string; readonly id: string; readonly version: number };
  readonly occurredAt: string;
  readonly payload: Payload;
  readonly metadata: EventMetadata;
  /** Opaque feed position of this event; a consumer stores the last one it applied. */
  readonly position: string;
}
