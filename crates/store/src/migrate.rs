//! Embedded schema migrations (refinery), one set per backend.
//!
//! The SQL lives in the workspace's `migrations/postgres` and
//! `migrations/sqlite` folders as plain versioned files (`V1__init.sql`, ...);
//! it is compiled into the binary, so a deployed service needs no files
//! beside it. refinery records applied versions in
//! `refinery_schema_history`, applies only the missing ones, and refuses to
//! start when an applied migration was edited afterwards (divergent).

pub(crate) mod postgres {
    refinery::embed_migrations!("../../migrations/postgres");
}

pub(crate) mod sqlite {
    refinery::embed_migrations!("../../migrations/sqlite");
}
