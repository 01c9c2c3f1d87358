import { notBuilt } from '../scenario.ts';

/** Application-layer foreign key validation through owners' APIs (issue 4). */
export const references = notBuilt('references', 'Cross-service reference validation', 'reference validator, issue 4');
