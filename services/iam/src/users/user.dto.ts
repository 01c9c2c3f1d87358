import type { User } from './user.table.ts';

/** What the API and other services learn about a user: never a secret. */
export function userDto(user: User, roles: readonly string[]) {
  return {
    id: user.id,
    email: user.email,
    display_name: user.display_name,
    status: user.status,
    department_code: user.department_code,
    roles: [...roles],
    version: user.version,
    created_at: user.created_at.toISOString(),
    updated_at: user.updated_at.toISOString(),
  };
}

export type UserDto = ReturnType<typeof userDto>;
