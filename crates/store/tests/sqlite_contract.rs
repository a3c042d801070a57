//! The store contract against the embedded SQLite store (temp directories).
#![allow(clippy::unwrap_used)]

mod common;

contract_tests!(common::sqlite);
