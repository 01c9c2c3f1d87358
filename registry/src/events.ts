import Type, { type TObject } from 'typebox';

/**
 * The payload of every event type a service publishes, as TypeBox objects: what consumers may rely
 * on (a typed handler's payload type is derived from it; `appendEvents` checks every payload
 * against it under test, so a producer that drifts fails its tests). Extra properties are allowed.
 */

const Id = Type.String({ format: 'uuid' });
const Timestamp = Type.String();
const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

// A CRUD table's `<entity>.created|updated|deleted` all carry the row as the API shows it.
function crudEvents<Entity extends string, Row extends TObject>(entity: Entity, row: Row) {
  return { [`${entity}.created`]: row, [`${entity}.updated`]: row, [`${entity}.deleted`]: row } as Record<`${Entity}.${'created' | 'updated' | 'deleted'}`, Row>;
}

const codeRow = <Columns extends Parameters<typeof Type.Object>[0]>(columns: Columns) =>
  Type.Object({ id: Id, code: Type.String(), ...columns, is_active: Type.Boolean(), version: Type.Integer() });

const user = Type.Object({
  id: Id,
  email: Type.String(),
  display_name: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  department_code: nullable(Type.String()),
  roles: Type.Array(Type.String()),
  version: Type.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const iamEvents = {
  'user.created': user,
  'user.updated': user,
  'user.deleted': user,
  'role.permissions-changed': Type.Object({ role: Type.String(), permissions: Type.Array(Type.String()), deleted: Type.Boolean() }),
  // The reset link and its token never travel in an event.
  'user.password-reset-requested': Type.Object({ userId: Id, email: Type.String(), expiresAt: Timestamp }, { additionalProperties: false }),
};

export const masterdataEvents = {
  ...crudEvents('label', codeRow({ label: Type.String(), display_name: Type.String(), abbreviation: nullable(Type.String()), display_order: Type.Integer() })),
  ...crudEvents('region', codeRow({ name: Type.String(), zone: Type.String() })),
  ...crudEvents('district', codeRow({ name: Type.String(), region_code: Type.String() })),
  ...crudEvents('sub-district', codeRow({ name: Type.String(), district_code: Type.String() })),
  ...crudEvents('department', codeRow({ name: Type.String() })),
  ...crudEvents('classification-code', codeRow({ description: Type.String(), category: Type.String() })),
};

const order = {
  id: Id,
  order_code: Type.String(),
  item_name: Type.String(),
  quantity: Type.Integer(),
  status: Type.String(),
  department_code: Type.String(),
  created_by: nullable(Type.String()),
  version: Type.Integer(),
  resource_id: Type.Optional(nullable(Id)),
  ordered_at: Type.Optional(Timestamp),
};

export const coreEvents = {
  'order.created': Type.Object(order),
  'order.status-changed': Type.Object({ ...order, previous_status: Type.String() }),
  ...crudEvents('resource', Type.Object({
    id: Id,
    reference_number: Type.String(),
    label_code: nullable(Type.String()),
    first_name: Type.String(),
    last_name: Type.String(),
    version: Type.Integer(),
  })),
};
