import { ConfigError } from '../config.ts';
import type { ServiceCredentials } from '../internal-auth/credentials.ts';
import type { Logger } from '../logger.ts';
import { feedTransport } from './feed-transport.ts';
import type { EventTransport } from './transport.ts';

/** What a transport may need to be built: who it runs for, how to reach peers, the service's config. */
export interface TransportDeps {
  /** Registry key of the service the transport runs in. */
  readonly service: string;
  /** A peer's base URL (`<KEY>_URL`), for transports that talk to producers over HTTP. */
  readonly peer: (key: string) => string;
  readonly credentials: ServiceCredentials;
  /** The service's validated configuration (`RABBITMQ_URL`, …). */
  readonly config?: Readonly<Record<string, unknown>>;
  readonly logger?: Logger;
}

/**
 * The transports `EVENT_TRANSPORT` may name, each a factory. The one seam where a transport joins:
 * `feed` (the producer's HTTP feed) and `rabbitmq` (the outbox relayed to RabbitMQ). The
 * RabbitMQ one, with amqplib, is loaded only by a service configured for it.
 */
const transportFactories: Readonly<Record<string, (deps: TransportDeps) => EventTransport | Promise<EventTransport>>> = {
  feed: (deps) => feedTransport({ urlOf: deps.peer, credentials: deps.credentials }),
  rabbitmq: async (deps) => {
    const url = deps.config?.RABBITMQ_URL;
    if (typeof url !== 'string') throw new ConfigError([{ variable: 'RABBITMQ_URL', message: `is required with EVENT_TRANSPORT=rabbitmq (declare uses: ['rabbitmq'] for ${deps.service})` }]);
    const { rabbitmqTransport } = await import('./rabbitmq/index.ts');
    return rabbitmqTransport({ url, urlOf: deps.peer, credentials: deps.credentials, onError: (error) => deps.logger?.warn({ err: error }, 'rabbitmq transport') });
  },
};

/**
 * Builds the event transport a service is configured with (`EVENT_TRANSPORT`, default `feed`);
 * `runService` calls it, and the platform publishes and subscribes through what it returns.
 *
 * @example
 * const transport = await createTransport(config.EVENT_TRANSPORT ?? 'feed', { service: 'core', peer, credentials });
 */
export async function createTransport(kind: string, deps: TransportDeps): Promise<EventTransport> {
  const factory = transportFactories[kind];
  if (!factory) {
    throw new ConfigError([{ variable: 'EVENT_TRANSPORT', message: `"${kind}" is not an event transport this build knows (known: ${Object.keys(transportFactories).join(', ')})` }]);
  }
  return factory(deps);
}
