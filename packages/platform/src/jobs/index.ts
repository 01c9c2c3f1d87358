export { createJobTablesV1, dropJobTablesV1 } from './table.ts';
export { effectiveSchedule, nextRunAfter } from './schedule.ts';
export { startJobs, type JobContext, type JobHandler, type Jobs, type JobsOptions, type JobStatus } from './scheduler.ts';
export { registerJobRoutes } from './routes.ts';
