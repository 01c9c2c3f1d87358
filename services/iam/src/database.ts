import type { ApiTokenTable, ApiTokenUsageTable } from './api-tokens/api-token.table.ts';
import type { AuditLogTable } from './audit/audit.table.ts';
import type { SigningKeyTable } from './keys/signing-key.table.ts';
import type { PasswordResetTable } from './password-resets/password-reset.table.ts';
import type { PolicyTable } from './policies/policy.table.ts';
import type { PermissionTable, RolePermissionTable, RoleTable } from './roles/role.table.ts';
import type { LoginThrottleTable, RefreshTokenTable, SessionTable } from './sessions/session.table.ts';
import type { UserRoleTable, UserTable } from './users/user.table.ts';

/** The iam schema as Kysely sees it. */
export interface IamDatabase {
  users: UserTable;
  roles: RoleTable;
  permissions: PermissionTable;
  user_roles: UserRoleTable;
  role_permissions: RolePermissionTable;
  policies: PolicyTable;
  signing_keys: SigningKeyTable;
  sessions: SessionTable;
  refresh_tokens: RefreshTokenTable;
  login_throttle: LoginThrottleTable;
  api_tokens: ApiTokenTable;
  api_token_usage: ApiTokenUsageTable;
  password_resets: PasswordResetTable;
  auth_audit_log: AuditLogTable;
}
