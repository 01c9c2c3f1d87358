import type { Scenario } from '../scenario.ts';
import { baselines } from './baselines.ts';
import { gateway } from './gateway.ts';
import { instances } from './instances.ts';
import { notifications, notificationsEndToEnd } from './notifications.ts';
import { propagation } from './propagation.ts';
import { references } from './references.ts';
import { replication } from './replication.ts';
import { startup } from './startup.ts';
import { transports } from './transports.ts';
import { notificationsUnread } from './unread.ts';

/**
 * Every scenario, in the order `npm run bench` runs and reports them. To add one, write
 * scenarios/<name>.ts exporting a `Scenario` and list it here; a capability that becomes built
 * replaces its `notBuilt(...)` with a real `run`.
 */
export const SCENARIOS: readonly Scenario[] = [startup, propagation, notifications, notificationsEndToEnd, notificationsUnread, gateway, references, replication, transports, instances, baselines];
