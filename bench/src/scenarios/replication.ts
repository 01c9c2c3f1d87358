import { notBuilt } from '../scenario.ts';

/** Logical replication of service databases into reporting; not built yet. */
export const replication = notBuilt('replication', 'Reporting replication lag', 'logical replication into reporting');
