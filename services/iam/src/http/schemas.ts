import Type from 'typebox';

export const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 });
/** New passwords: long enough to resist guessing, short enough to hash cheaply. */
export const NewPassword = Type.String({ minLength: 12, maxLength: 256 });
export const RoleName = Type.String({ pattern: '^[a-z][a-z0-9-]{0,49}$', description: 'e.g. staff' });
export const PermissionName = Type.String({ pattern: '^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$', maxLength: 100, description: 'resource:action, e.g. orders:read' });
export const DepartmentCode = Type.Union([Type.String({ pattern: '^[A-Z0-9_-]{1,20}$' }), Type.Null()]);
