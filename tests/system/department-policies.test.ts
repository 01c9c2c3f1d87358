import { describe, expect, it } from 'vitest';
import { permissionOf } from '@archipelago/platform/auth';
import { serviceDefinitions } from '@archipelago/registry';
import { coreEntities } from '../../services/core/src/catalog.ts';
import { DEPARTMENT_SCOPED_RESOURCES } from '../../services/iam/src/policies/policy.routes.ts';

// IAM accepts department conditions only where core applies them: core's declaration must name
// exactly its orders and its entities with a department_code column, and IAM must read it.
describe('department-scoped resources', () => {
  it("are exactly core's orders and its entities with a department_code column, as core declares them", () => {
    const departmental = coreEntities.filter((entity) => 'department_code' in entity.columns).map((entity) => permissionOf('GET', entity.path)!.replace(/:read$/, ''));
    expect([...(serviceDefinitions.core.departmentScoped ?? [])].sort()).toEqual(['orders', ...departmental].sort());
    expect([...DEPARTMENT_SCOPED_RESOURCES].sort()).toEqual(['orders', ...departmental].sort());
  });
});
