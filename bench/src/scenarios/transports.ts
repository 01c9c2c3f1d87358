import { notBuilt } from '../scenario.ts';

/** Event transports (PostgreSQL/HTTP default, RabbitMQ) compared; not built yet. */
export const transports = notBuilt('transports', 'Event transports compared', 'event transports');
