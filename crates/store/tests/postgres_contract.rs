//! The store contract against a real PostgreSQL with pgvector, one fresh
//! database per test. Needs `DATABASE_URL` (see `scripts/with-postgres.sh`).
#![allow(clippy::unwrap_used)]

mod common;

contract_tests!(common::postgres);
