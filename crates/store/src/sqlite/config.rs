//! Configuration of the embedded SQLite store.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// SQLite's `synchronous` setting, i.e. when commits reach the disk.
///
/// With WAL, a commit appends to the `-wal` file. `Full` fsyncs the WAL at
/// every commit: a registration that returned success survives `kill -9`
/// *and* power loss or an OS crash. `Normal` fsyncs only at checkpoints: a
/// committed transaction still survives `kill -9` (the data is in the OS page
/// cache), but the last commits may be lost on power failure; the database is
/// never corrupted either way. Enrolments are rare and valuable, so the
/// default is `Full` (one fsync per registration, a few ms at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    #[default]
    Full,
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Where and how to open the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; its parent directory is created if missing.
    pub path: PathBuf,
    /// Durability of commits (see [`Synchronous`]).
    pub synchronous: Synchronous,
    /// Read connections (searches and reads run in parallel on them; writes
    /// go through one writer connection, as SQLite allows one writer anyway).
    pub readers: usize,
    /// How long a statement waits for a lock held by another process before
    /// failing with `Unavailable`.
    pub busy_timeout: Duration,
    /// Page cache per connection, in KiB (`PRAGMA cache_size`).
    pub cache_kib: u64,
    /// Bytes of the file read through a memory map (`PRAGMA mmap_size`).
    pub mmap_bytes: u64,
}

impl SqliteConfig {
    /// File name used inside a data directory.
    pub const FILE_NAME: &'static str = "facegate.sqlite3";

    /// A store at `path` with default settings.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            synchronous: Synchronous::Full,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            cache_kib: 16 * 1024,
            mmap_bytes: 1 << 30,
        }
    }

    /// A store in `data_dir/facegate.sqlite3`.
    pub fn in_data_dir(data_dir: impl AsRef<Path>) -> Self {
        Self::new(data_dir.as_ref().join(Self::FILE_NAME))
    }
}
