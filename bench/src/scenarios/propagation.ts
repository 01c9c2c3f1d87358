import { notBuilt } from '../scenario.ts';

/** Change in one service to its lookup copies in others; needs the event backbone (issue 4). */
export const propagation = notBuilt('propagation', 'Event propagation (change to lookup copy)', 'lookup tables in core are not wired to the event backbone yet, issue 4');
