//! The database schema, as sqlx migrations embedded from `infra/migrations`
//! (beside this crate, not inside it: the schema is shared by every component).
//!
//! Every component's tables live there, numbered in the order they were
//! added; `prescient migrate` and every long-running subcommand apply them on
//! start, so a fresh database needs no manual step.

use sqlx::PgPool;

/// Migration failures.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// sqlx could not apply a migration.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Applies every pending migration. Safe to call concurrently from several
/// processes (sqlx takes an advisory lock) and on every start.
pub async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
