//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!`
//! embeds `../migrations/` (infra/migrations) at compile time, and cargo does not otherwise know
//! to look there (sqlx's documented advice).

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
