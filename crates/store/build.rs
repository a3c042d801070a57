//! Rebuilds the crate when a migration is added: refinery embeds the SQL files
//! with `include_str!`, which tracks existing files but not new ones.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
