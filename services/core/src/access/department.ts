import type { FastifyRequest } from 'fastify';
import { AppError } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import type { CrudAccess } from '@archipelago/platform/crud';

// A department no user belongs to: asking about it tells whether policies let a user see other departments.
const ANOTHER_DEPARTMENT = { departmentCode: '\u0000another' };

const isForbidden = (error: unknown) => error instanceof AppError && error.code === 'FORBIDDEN';

/**
 * Department policies on the rows of one resource (`orders`, `engagements`, …) that carry a
 * `department_code`. A row the user may not read does not exist for them (404, never 403: no
 * existence oracle); writing needs `<resource>:write` on the row's department (and on the new one
 * when a change moves it).
 *
 * @example
 * const access = departmentAccess(auth, 'orders');
 * await access.requireReadable(request, order.department_code, () => notFound(id));
 */
export function departmentAccess(auth: Auth, resource: string) {
  const read = `${resource}:read`;
  const write = `${resource}:write`;
  const readable = async (request: FastifyRequest, departmentCode: string | null): Promise<boolean> => {
    try {
      await auth.authorize(request, read, { departmentCode });
      return true;
    } catch (error) {
      if (isForbidden(error)) return false;
      throw error;
    }
  };
  return {
    readable,
    /** Throws `notFound()` when the user may not read a row of this department. */
    async requireReadable(request: FastifyRequest, departmentCode: string | null, notFound: () => AppError): Promise<void> {
      if (!(await readable(request, departmentCode))) throw notFound();
    },
    /** A row the user cannot read is not found; one they can read but not write is a 403. */
    async requireWritable(request: FastifyRequest, departmentCode: string | null, notFound: () => AppError): Promise<void> {
      if (!(await readable(request, departmentCode))) throw notFound();
      await auth.authorize(request, write, { departmentCode });
    },
    /** For a new row, or a row moved to `departmentCode`: a 403 when policies deny it. */
    async requireWriteTo(request: FastifyRequest, departmentCode: string | null): Promise<void> {
      await auth.authorize(request, write, { departmentCode });
    },
    /**
     * The filters of a list narrowed to what policies let the user read: all departments, their
     * own only, or nothing (`undefined`: an empty page, whether or not the department has rows).
     */
    async listScope<Filters extends { department_code?: string | null }>(request: FastifyRequest, filters: Filters): Promise<Filters | undefined> {
      if (filters.department_code !== undefined) return (await readable(request, filters.department_code)) ? filters : undefined;
      if (await readable(request, ANOTHER_DEPARTMENT.departmentCode)) return filters;
      const own = auth.userOf(request).departmentCode;
      if (own === null || !(await readable(request, own))) return undefined;
      return { ...filters, department_code: own };
    },
  };
}

export type DepartmentAccess = ReturnType<typeof departmentAccess>;

/**
 * Department policies as the CRUD routes of a table with a `department_code` column take them:
 * lists narrowed, unreadable rows not found, writes checked on the locked row (and on the
 * department a change moves it to).
 */
export function departmentCrudAccess(auth: Auth, resource: string): CrudAccess {
  const access = departmentAccess(auth, resource);
  const departmentOf = (values: Readonly<Record<string, unknown>>) => (values.department_code as string | null | undefined) ?? null;
  return {
    listScope: (request, where) => access.listScope(request, where),
    canRead: (request, row, notFound) => access.requireReadable(request, departmentOf(row), notFound),
    canCreate: (request, values) => access.requireWriteTo(request, departmentOf(values)),
    canChange: (request, notFound) => async (current, changes) => {
      await access.requireWritable(request, departmentOf(current), notFound);
      if ('department_code' in changes && departmentOf(changes) !== departmentOf(current)) await access.requireWriteTo(request, departmentOf(changes));
    },
  };
}
