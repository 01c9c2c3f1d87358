import Type, { type TSchema } from 'typebox';
import { defineCrudTable } from '@archipelago/platform/crud';

const text = (maxLength: number) => Type.String({ minLength: 1, maxLength });
const nullable = (schema: TSchema) => Type.Union([schema, Type.Null()]);
const oneOf = (...values: string[]) => Type.Union(values.map((value) => Type.Literal(value)));
const Id = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const Code = (maxLength: number) => Type.String({ pattern: `^[A-Z0-9][A-Z0-9._-]{0,${maxLength - 1}}$` });

export const resources = defineCrudTable({
  name: 'resource',
  table: 'resources',
  title: 'Resource',
  path: '/api/v1/resources',
  columns: {
    reference_number: Type.String({ pattern: '^[A-Z0-9-]{1,11}$', description: 'Unique reference, e.g. REF001' }),
    label_code: nullable(Type.String({ pattern: '^[A-Z0-9_]{1,10}$' })),
    first_name: text(50),
    last_name: text(50),
    date_of_birth: nullable(Type.String({ format: 'date' })),
    gender: nullable(text(10)),
    email: nullable(Type.String({ format: 'email', maxLength: 255 })),
    phone: nullable(text(30)),
  },
  optionalOnCreate: ['label_code', 'date_of_birth', 'gender', 'email', 'phone'],
  immutable: ['reference_number'],
  filters: ['reference_number', 'label_code', 'last_name'],
  orderBy: [{ column: 'reference_number', direction: 'asc' }],
  unique: 'reference_number',
  events: true,
  deletion: 'soft',
});

export const addresses = defineCrudTable({
  name: 'resource-address',
  table: 'resource_addresses',
  title: 'Address',
  path: '/api/v1/resources/:resource_id/addresses',
  columns: {
    resource_id: Id,
    address_type: oneOf('HOME', 'WORK', 'MAILING', 'OTHER'),
    address_line1: text(255),
    address_line2: nullable(text(255)),
    city: nullable(text(100)),
    postal_code: nullable(text(20)),
    region_code: nullable(Code(10)),
    district_code: nullable(Code(20)),
    is_primary: Type.Boolean(),
  },
  optionalOnCreate: ['address_type', 'address_line2', 'city', 'postal_code', 'region_code', 'district_code', 'is_primary'],
  filters: ['region_code'],
  orderBy: [{ column: 'created_at', direction: 'asc' }],
  deletion: 'hard',
});

export const engagements = defineCrudTable({
  name: 'engagement',
  table: 'engagements',
  title: 'Engagement',
  path: '/api/v1/engagements',
  columns: {
    resource_id: Id,
    department_code: nullable(Code(20)),
    engagement_type: oneOf('OUTPATIENT', 'INPATIENT', 'EMERGENCY', 'TELEHEALTH'),
    status: oneOf('OPEN', 'CLOSED'),
    started_at: Timestamp,
    ended_at: nullable(Timestamp),
    notes: nullable(Type.String({ maxLength: 10_000 })),
  },
  optionalOnCreate: ['department_code', 'status', 'started_at', 'ended_at', 'notes'],
  immutable: ['resource_id'],
  filters: ['resource_id', 'department_code', 'status', 'engagement_type'],
  orderBy: [{ column: 'started_at', direction: 'desc' }],
  deletion: 'soft',
});

export const intakes = defineCrudTable({
  name: 'intake',
  table: 'intakes',
  title: 'Intake',
  path: '/api/v1/intakes',
  columns: {
    resource_id: Id,
    engagement_id: nullable(Id),
    department_code: nullable(Code(20)),
    intake_at: Timestamp,
    priority: oneOf('ROUTINE', 'URGENT', 'EMERGENCY'),
    reason: text(500),
  },
  optionalOnCreate: ['engagement_id', 'department_code', 'intake_at', 'priority'],
  immutable: ['resource_id'],
  filters: ['resource_id', 'engagement_id', 'department_code', 'priority'],
  orderBy: [{ column: 'intake_at', direction: 'desc' }],
  deletion: 'soft',
});

// The table is `entries` (core's reports read it by that name); the API serves its rows as records.
export const entries = defineCrudTable({
  name: 'record',
  table: 'entries',
  title: 'Record',
  path: '/api/v1/records',
  columns: {
    resource_id: Id,
    engagement_id: nullable(Id),
    entry_date: Type.String({ format: 'date' }),
    classification_code: nullable(Code(10)),
    notes: nullable(Type.String({ maxLength: 10_000 })),
  },
  optionalOnCreate: ['engagement_id', 'entry_date', 'classification_code', 'notes'],
  immutable: ['resource_id'],
  filters: ['resource_id', 'engagement_id', 'classification_code', 'entry_date'],
  orderBy: [{ column: 'entry_date', direction: 'desc' }],
  deletion: 'hard',
});

/** Every core table served by the CRUD module, parents before children (orders have their own module). */
export const coreEntities = [resources, addresses, engagements, intakes, entries];
