import { AsyncResource } from 'node:async_hooks';
import type { Kysely, Transaction } from 'kysely';
import { AppError, isConnectionError } from '@archipelago/platform';
import type { EventEnvelope } from '@archipelago/platform/events';
import { markIdempotentWrite } from '@archipelago/platform/idempotency';
import type { JobHandler } from '@archipelago/platform/jobs';
import type { ReferenceValidator } from '@archipelago/platform/references';
import type { NotificationDatabase, Priority } from '../database.ts';
import type { Change, Realtime } from '../realtime/realtime.ts';
import type { BadgeCounter } from './badges.ts';
import { batched } from './batches.ts';
import type { FeedFilters, NewNotification, NotificationRepository, NotificationView, Position, ReceiptField, UnreadCounts, Viewer } from './notification.repository.ts';
import { notificationsOf } from './notification.rules.ts';

export interface NotificationInput {
  readonly department_code?: string;
  readonly user_id?: string;
  readonly notification_type: string;
  readonly title: string;
  readonly message: string;
  readonly priority?: Priority;
  readonly reference_id?: string;
  readonly reference_type?: string;
  readonly metadata?: Record<string, unknown>;
}

export type Action = 'read' | 'seen' | 'archive' | 'action';
// Acting on a notification reads it; archiving one takes it out of the unread count too.
const FIELDS: Record<Action, readonly ReceiptField[]> = {
  read: ['read_at'],
  seen: ['seen_at'],
  archive: ['archived_at'],
  action: ['actioned_at', 'read_at'],
};

export interface FeedPage {
  readonly items: NotificationView[];
  readonly total: number;
  readonly limit: number;
  readonly page: number | null;
  readonly next_cursor: string | null;
}

const changeOfRows = (rows: readonly NotificationView[]): Change => ({
  users: [...new Set(rows.flatMap((row) => (row.user_id ? [row.user_id] : [])))],
  departments: [...new Set(rows.flatMap((row) => (!row.user_id && row.department_code ? [row.department_code] : [])))],
  created: rows.length > 0,
});

// Inserts, and announces at commit what there is to deliver (the rows, when they fit): to the other
// instances when this one follows its commit with `realtime.changed`, to every instance when it cannot (the consumer).
const inserter = (repository: NotificationRepository, realtime: Realtime, audience: 'others' | 'everyone' = 'others') => async (trx: Transaction<NotificationDatabase>, rows: readonly NewNotification[]) => {
  const created = await repository.insert(trx, rows);
  if (created.length > 0) await repository.announce(trx, realtime.announcements(changeOfRows(created), audience, created));
  return created;
};

/**
 * The group consumer's handler of core's order events: the rules' notifications, in the consumer's
 * transaction (one effect per event), for events not applied before — a redelivered one makes none.
 */
export function orderEventHandler(repository: NotificationRepository, realtime: Realtime) {
  // The platform's consumer commits the transaction: this instance hears of it by LISTEN, like the others.
  const insert = inserter(repository, realtime, 'everyone');
  return async (trx: Transaction<NotificationDatabase>, events: readonly EventEnvelope[]): Promise<void> => {
    const fresh = await repository.firstApplications(trx, events.map((event) => event.id));
    await insert(trx, events.filter((event) => fresh.has(event.id)).flatMap(notificationsOf));
  };
}

/** Core's feed keeps events 7 days (outbox.prune), so an event applied 8 days ago cannot come back. */
export function pruneAppliedEventsJob(repository: NotificationRepository, keepDays = 8): JobHandler {
  return async () => ({ deleted: await repository.pruneAppliedEvents(new Date(Date.now() - keepDays * 24 * 60 * 60_000)) });
}

/** The rules of notifications: who sees what, per-user state, and every change told to the sockets after it commits. */
export function notificationService(db: Kysely<NotificationDatabase>, repository: NotificationRepository, references: ReferenceValidator, badges: BadgeCounter, realtime: Realtime) {
  const insert = inserter(repository, realtime);
  // A viewer's own change (read, archive, read-all) dropped their cached count: counted again before
  // answering, so the unread-count a client asks for next is served from the cache. Exact all the
  // same: a count read while another change happened is not kept (badges.ts).
  const recount = (viewer: Viewer) => badges.countOf(viewer);
  // Creates made at the same time share one transaction (one insert lock, one commit); each still
  // marks its own Idempotency-Key in it (bound to its request), and a batch that fails is retried
  // one by one, so a create fails only for its own reasons. Only the transaction is batched: what
  // follows a commit must never make a committed batch run again (its rows would be made twice).
  // A create is one request's rows: one, or one per recipient of a multi-recipient create.
  const createTogether = batched((pending: readonly { rows: readonly NewNotification[]; markWritten: (trx: Transaction<NotificationDatabase>) => Promise<void> }[]) =>
    db.transaction().execute(async (trx) => {
      const rows = await insert(trx, pending.flatMap((one) => one.rows));
      for (const one of pending) await one.markWritten(trx);
      let next = 0;
      return pending.map((one) => rows.slice(next, (next += one.rows.length)));
    }),
    { retryAlone: (error) => !isConnectionError(error) },
  );
  // The rows of one create request, in its own (batched) transaction, told to the sockets after it commits.
  const createRows = async (rows: readonly NewNotification[]): Promise<NotificationView[]> => {
    // Marked in this request's async context (its Idempotency-Key), whoever's batch runs it; runInAsyncScope, as bind() builds deprecated accessors on every call.
    const request = new AsyncResource('notification.create');
    const created = await createTogether({ rows, markWritten: (trx) => request.runInAsyncScope(markIdempotentWrite, undefined, trx) });
    await realtime.changed(changeOfRows(created)); // deliveries of a burst coalesce in realtime
    return created;
  };
  const rowOf = (input: Omit<NotificationInput, 'user_id'>, userId: string | null, createdBy: string): NewNotification => ({
    department_code: input.department_code ?? null,
    user_id: userId,
    notification_type: input.notification_type,
    title: input.title,
    message: input.message,
    priority: input.priority,
    reference_id: input.reference_id ?? null,
    reference_type: input.reference_type ?? null,
    metadata: input.metadata,
    created_by: createdBy,
  });

  return {

    async create(input: NotificationInput, createdBy: string): Promise<NotificationView> {
      if (!input.department_code && !input.user_id) {
        throw new AppError('BAD_REQUEST', 'A notification goes to a department (department_code), a user (user_id) or a user of a department (both)', {
          fields: [{ field: 'body.department_code', message: 'or body.user_id is required' }],
        });
      }
      await references.check([
        { field: 'body.department_code', value: input.department_code, ref: 'department' },
        { field: 'body.user_id', value: input.user_id, ref: 'user' },
      ]);
      const [created] = await createRows([rowOf(input, input.user_id ?? null, createdBy)]);
      return created!;
    },

    /** One notification per listed user (Novu's and Knock's multi-recipient trigger): one request, one transaction, one row each. */
    async createForUsers(input: Omit<NotificationInput, 'user_id'> & { readonly user_ids: readonly string[] }, createdBy: string): Promise<NotificationView[]> {
      await references.check([
        { field: 'body.department_code', value: input.department_code, ref: 'department' },
        ...input.user_ids.map((id, i) => ({ field: `body.user_ids.${i}`, value: id, ref: 'user' })),
      ]);
      return createRows(input.user_ids.map((id) => rowOf(input, id, createdBy)));
    },

    async feed(viewer: Viewer, filters: FeedFilters, page: { limit: number; page?: number; before?: Position }): Promise<FeedPage> {
      const offset = page.before ? 0 : ((page.page ?? 1) - 1) * page.limit;
      const [items, total] = await Promise.all([
        repository.feed(viewer, filters, { limit: page.limit + 1, before: page.before, offset }),
        repository.count(viewer, filters),
      ]);
      const more = items.length > page.limit;
      const shown = items.slice(0, page.limit);
      return { items: shown, total, limit: page.limit, page: page.before ? null : (page.page ?? 1), next_cursor: more ? shown[shown.length - 1]!.cursor : null };
    },

    async find(viewer: Viewer, id: string): Promise<NotificationView> {
      const found = await repository.findVisible(viewer, id);
      if (!found) throw new AppError('NOT_FOUND', `Notification ${id} does not exist`);
      return found;
    },

    /** Sets the viewer's state of one of their notifications (another's does not exist for them). */
    async act(viewer: Viewer, id: string, action: Action): Promise<NotificationView> {
      await this.find(viewer, id);
      const change: Change = { users: [viewer.userId], departments: [], created: false };
      await db.transaction().execute(async (trx) => {
        await repository.mark(trx, viewer, id, FIELDS[action]);
        await repository.announce(trx, realtime.announcements(change));
        await markIdempotentWrite(trx);
      });
      await realtime.changed(change);
      const [view] = await Promise.all([this.find(viewer, id), recount(viewer)]);
      return view;
    },

    async readAll(viewer: Viewer, type?: string): Promise<{ updated: number }> {
      const change: Change = { users: [viewer.userId], departments: [], created: false };
      const updated = await db.transaction().execute(async (trx) => {
        const count = await repository.readAll(trx, viewer, type);
        await repository.announce(trx, realtime.announcements(change));
        await markIdempotentWrite(trx);
        return count;
      });
      await realtime.changed(change);
      await recount(viewer);
      return { updated };
    },

    unreadCount: (viewer: Viewer): Promise<UnreadCounts> => badges.countOf(viewer),
  };
}

export type NotificationService = ReturnType<typeof notificationService>;
