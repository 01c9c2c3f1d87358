import type { NotificationRepository, UnreadCounts, Viewer } from './notification.repository.ts';

/**
 * Unread counts cached in this process, exact by construction: every change drops the entries it
 * may alter (a user's, or a whole department's), and a count read while a change happened is
 * returned but not kept (each user and department has a generation; a fill stores only if
 * neither moved while it ran).
 */
export function badgeCounter(repository: NotificationRepository) {
  const cache = new Map<string, { departmentCode: string | null; counts: UnreadCounts }>();
  const userGeneration = new Map<string, number>();
  const departmentGeneration = new Map<string, number>();
  const generationOf = (viewer: Viewer) => `${userGeneration.get(viewer.userId) ?? 0}/${viewer.departmentCode === null ? '' : departmentGeneration.get(viewer.departmentCode) ?? 0}`;
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

  return {
    /** Counts of many viewers at once; misses are counted in one query. */
    async countsOf(viewers: readonly Viewer[]): Promise<Map<string, UnreadCounts>> {
      const result = new Map<string, UnreadCounts>();
      const missing: Viewer[] = [];
      for (const viewer of viewers) {
        const hit = cache.get(viewer.userId);
        if (hit && hit.departmentCode === viewer.departmentCode) result.set(viewer.userId, { ...hit.counts });
        else missing.push(viewer);
      }
      if (missing.length > 0) {
        const before = new Map(missing.map((viewer) => [viewer.userId, generationOf(viewer)]));
        const fresh = await repository.unreadCounts(missing);
        for (const viewer of missing) {
          const counts = fresh.get(viewer.userId)!;
          result.set(viewer.userId, counts);
          if (before.get(viewer.userId) === generationOf(viewer)) {
            if (cache.size >= 100_000) cache.clear();
            cache.set(viewer.userId, { departmentCode: viewer.departmentCode, counts: { ...counts } });
          }
        }
      }
      return result;
    },
    async countOf(viewer: Viewer): Promise<UnreadCounts> {
      return (await this.countsOf([viewer])).get(viewer.userId)!;
    },
    /** A user's notifications or receipts changed. */
    userChanged(userId: string): void {
      bump(userGeneration, userId);
      cache.delete(userId);
    },
    /** A department broadcast was added or changed. */
    departmentChanged(departmentCode: string): void {
      bump(departmentGeneration, departmentCode);
      for (const [userId, entry] of cache) if (entry.departmentCode === departmentCode) cache.delete(userId);
    },
  };
}

export type BadgeCounter = ReturnType<typeof badgeCounter>;
