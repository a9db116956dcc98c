//! Rebuilds the binary when a migration is added or changed: `refinery::embed_migrations!`
//! reads `migrations/` at compile time, and cargo would not notice a new file by itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
