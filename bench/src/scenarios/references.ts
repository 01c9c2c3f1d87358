import { notBuilt } from '../scenario.ts';

/** Application-layer foreign key validation through owners' APIs; needs the event backbone (issue 4). */
export const references = notBuilt('references', 'Cross-service reference validation', 'event backbone, issue 4');
