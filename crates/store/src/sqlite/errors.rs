//! Classifies SQLite errors into [`StoreError`] kinds.

use rusqlite::ffi;
use rusqlite::ErrorCode;

use crate::error::StoreError;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound(e.to_string()),
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                ErrorCode::ConstraintViolation => match f.extended_code {
                    ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                        StoreError::Conflict(e.to_string())
                    }
                    ffi::SQLITE_CONSTRAINT_FOREIGNKEY => StoreError::NotFound(e.to_string()),
                    _ => StoreError::BadData(e.to_string()),
                },
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly => StoreError::Unavailable(e.to_string()),
                ErrorCode::TooBig => StoreError::BadData(e.to_string()),
                _ => StoreError::Internal(e.to_string()),
            },
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        StoreError::Internal(format!("reading a stored value: {e}"))
    }
}
