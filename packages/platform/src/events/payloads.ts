import type { TObject } from 'typebox';
import Value from 'typebox/value';
import { loadRegistry } from '@archipelago/registry';
import type { NewEvent } from './envelope.ts';

/** Thrown (under test) when an appended event's payload does not match the schema its producer declares. */
export class EventPayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventPayloadError';
  }
}

let declared: ReadonlyMap<string, readonly TObject[]> | undefined;

// Every declared event type's payload schemas (a type two services publish has two).
function schemasOf(type: string): readonly TObject[] | undefined {
  if (!declared) {
    const byType = new Map<string, TObject[]>();
    for (const service of loadRegistry(undefined, {}).services) {
      for (const [name, schema] of Object.entries(service.events?.publishes ?? {})) byType.set(name, [...(byType.get(name) ?? []), schema]);
    }
    declared = byType;
  }
  return declared.get(type);
}

/**
 * Whether appended payloads are checked: under test (NODE_ENV=test) or with
 * ARCHIPELAGO_CHECK_EVENT_PAYLOADS=1; `0` turns it off (a test that appends a malformed event on purpose).
 */
export function checkingEventPayloads(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  if (env.ARCHIPELAGO_CHECK_EVENT_PAYLOADS === '0') return false;
  return env.NODE_ENV === 'test' || env.ARCHIPELAGO_CHECK_EVENT_PAYLOADS === '1';
}

/**
 * Checks each event's payload, as consumers will read it (its JSON), against the schema the
 * registry declares for its type (`events.publishes`); types no service declares pass (the
 * platform's own tests use made-up ones). Called by `appendEvents` when checking is on.
 */
export function assertEventPayloads(events: readonly NewEvent[]): void {
  for (const event of events) {
    const schemas = schemasOf(event.type);
    if (!schemas) continue;
    const payload: unknown = JSON.parse(JSON.stringify(event.payload ?? null));
    if (schemas.some((schema) => Value.Check(schema, payload))) continue;
    const problems = [...Value.Errors(schemas[0]!, payload)].slice(0, 5).map((error) => `${error.instancePath || '/'} ${error.message}`);
    throw new EventPayloadError(`The payload of ${event.type} (${event.aggregateType} ${event.aggregateId}) does not match its declared schema (registry/src/events.ts): ${problems.join('; ')}`);
  }
}
