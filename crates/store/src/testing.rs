//! Test support shared by every crate's PostgreSQL tests (feature
//! `testing`): which server to test against, and a uniquely named database
//! per test so parallel tests never see each other's rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod redis;

use std::sync::atomic::{AtomicU32, Ordering};

/// The PostgreSQL server to test against, from `FACEGATE_TEST_DATABASE_URL`
/// or `DATABASE_URL`. Without one: fail under CI, skip loudly otherwise.
pub fn pg_admin_url() -> Option<String> {
    let url = std::env::var("FACEGATE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "no PostgreSQL configured for the PostgreSQL tests: set DATABASE_URL, \
                 or run them through scripts/with-postgres.sh"
            );
        }
        eprintln!(
            "\n*** SKIPPING PostgreSQL test: DATABASE_URL is not set. \
             Run them through `scripts/with-postgres.sh` (scripts/test.sh does) to include it. ***\n"
        );
    }
    url
}

/// A uniquely named database created for one test.
pub struct TestDatabase {
    /// The database name.
    pub name: String,
    /// A URL that connects to it.
    pub url: String,
    admin_url: String,
}

/// Replaces the database name in a URL (`postgres://.../db?x`) or key=value string.
pub fn with_dbname(url: &str, db: &str) -> String {
    if let Some(rest_at) = url.find("://") {
        let after = rest_at + 3;
        let end = url[after..].find('?').map_or(url.len(), |i| after + i);
        let path_start = url[after..end].find('/').map_or(end, |i| after + i);
        format!("{}/{}{}", &url[..path_start], db, &url[end..])
    } else {
        format!("{url} dbname={db}")
    }
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

async fn admin_client(admin_url: &str) -> tokio_postgres::Client {
    // Through the store's connector, so a test server URL with sslmode works.
    let (pg, tls) = crate::PgTls::from_url(admin_url).expect("the test PostgreSQL URL");
    tls.connect(&pg)
        .await
        .expect("connecting to the test PostgreSQL server")
}

impl TestDatabase {
    /// Creates a fresh database on the server at `admin_url`.
    pub async fn create(admin_url: &str) -> TestDatabase {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "facegate_test_{}_{}_{:08x}",
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let client = admin_client(admin_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDatabase {
            url: with_dbname(admin_url, &name),
            name,
            admin_url: admin_url.to_string(),
        }
    }

    /// Drops the database (forcing other sessions off).
    pub async fn drop_database(self) {
        let client = admin_client(&self.admin_url).await;
        if let Err(e) = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
        {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}
