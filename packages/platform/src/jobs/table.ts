import { sql, type Kysely } from 'kysely';

/**
 * Creates the jobs' status table (version 1) in the current schema: one row per declared job,
 * written by whichever instance ran it, so every instance reports the same. Call it from a
 * service migration.
 *
 * @example
 * export async function up(db: Kysely<unknown>) { await createJobTablesV1(db); }
 * export async function down(db: Kysely<unknown>) { await dropJobTablesV1(db); }
 */
export async function createJobTablesV1(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE job_status (
      job              text PRIMARY KEY,
      schedule         text,
      next_run_at      timestamptz,
      last_tick        timestamptz,
      running_since    timestamptz,
      running_instance text,
      last_trigger     text CHECK (last_trigger IN ('schedule', 'manual')),
      last_instance    text,
      last_started_at  timestamptz,
      last_finished_at timestamptz,
      last_duration_ms integer,
      last_outcome     text CHECK (last_outcome IN ('succeeded', 'failed')),
      last_error       text,
      last_result      jsonb
    )`.execute(db);
  await sql`COMMENT ON COLUMN job_status.last_tick IS 'The newest scheduled time claimed by an instance: each tick runs once'`.execute(db);
}

export async function dropJobTablesV1(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE job_status`.execute(db);
}
