//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the migration folder at
//! compile time, and cargo only notices edits of files it already knows unless told about the folder.

fn main() {
    println!("cargo:rerun-if-changed=src/meta/migrations");
}
