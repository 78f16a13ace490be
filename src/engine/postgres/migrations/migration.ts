/**
 * One step of the PostgreSQL store's schema: a version number (applied in order, each exactly
 * once, recorded in `pipeline.schema_migrations`), a name, and the SQL that runs in one
 * transaction. A released migration is never edited: a change of schema is a new migration.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}
