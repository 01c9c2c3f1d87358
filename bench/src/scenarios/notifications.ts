import { notBuilt } from '../scenario.ts';

/** Persisted notifications and real-time delivery; the notification capability is not built yet. */
export const notifications = notBuilt('notifications', 'Notifications (persist and deliver)', 'notification delivery');
