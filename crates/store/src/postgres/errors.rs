//! Classifies PostgreSQL and pool errors into [`StoreError`] kinds.
//!
//! SQLSTATE classes decide: 23 (integrity) → conflict / not-found / bad data,
//! 22 (data exception) → bad data, 08 (connection), 53 (resources),
//! 57 (operator intervention: shutdown, statement timeout), 40 (serialization,
//! deadlock) → unavailable, i.e. worth retrying. Errors without a SQLSTATE are
//! I/O or closed-connection errors (unavailable) unless they are
//! (de)serialisation bugs (internal). Their message carries the whole cause
//! chain (tokio-postgres's own `Display` drops the cause, e.g. which
//! certificate check failed), and the two TLS refusals that have a known fix
//! say it: a server without TLS under a `sslmode` that requires it, and a
//! server whose `pg_hba.conf` accepts this client only over TLS.

use std::error::Error as _;

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::error::StoreError;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let mut msg = format!("{} ({})", db.message(), code.code());
            if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && db.message().contains("no encryption")
            {
                msg.push_str(
                    "; the server accepts this client only over TLS: set sslmode=require, \
                     verify-ca or verify-full in the PostgreSQL URL",
                );
            }
            if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::EXCLUSION_VIOLATION {
                return StoreError::Conflict(msg);
            }
            if *code == SqlState::FOREIGN_KEY_VIOLATION {
                return StoreError::NotFound(msg);
            }
            return match &code.code()[..2] {
                "22" | "23" => StoreError::BadData(msg),
                "08" | "53" | "57" | "40" | "55" => StoreError::Unavailable(msg),
                _ => StoreError::Internal(msg),
            };
        }
        if e.is_closed() {
            return StoreError::Unavailable(format!("connection closed: {e}"));
        }
        let text = describe(&e);
        if text.contains("server does not support TLS") {
            return StoreError::Unavailable(
                "the PostgreSQL server does not accept TLS connections, but sslmode \
                 (require, verify-ca or verify-full) requires TLS: turn ssl on in the \
                 server's postgresql.conf, or use sslmode=prefer or disable on a trusted \
                 network"
                    .into(),
            );
        }
        let mut source = e.source();
        while let Some(s) = source {
            if s.is::<std::io::Error>() {
                return StoreError::Unavailable(text);
            }
            source = s.source();
        }
        if text.contains("serializ") || text.contains("deserializ") {
            StoreError::Internal(text)
        } else {
            StoreError::Unavailable(text)
        }
    }
}

/// The error and its causes, `: `-separated (a cause already at the end of
/// the text is not repeated).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(kind) => {
                StoreError::Unavailable(format!("no database connection ({kind:?} timed out)"))
            }
            PoolError::Closed => StoreError::Unavailable("connection pool closed".into()),
            PoolError::PostCreateHook(e) => StoreError::Unavailable(e.to_string()),
            PoolError::NoRuntimeSpecified => {
                StoreError::Internal("connection pool has no runtime".into())
            }
        }
    }
}
