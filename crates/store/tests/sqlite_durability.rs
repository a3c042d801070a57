//! Durability of the SQLite store: a registration that returned success
//! survives `kill -9` of the process. The test re-runs its own binary as a
//! child that registers users and reports each success, kills it with
//! SIGKILL mid-stream, and checks every reported user is in the file.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::rng::Rng;
use face_store::{FaceStore, NewTemplate, NewUser, SqliteConfig, SqliteStore};

const CHILD_ENV: &str = "FACEGATE_DURABILITY_CHILD_DB";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_survives_kill_9() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        return child(path).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("facegate.sqlite3");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "registration_survives_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reported = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("committed ") {
            reported.push(id.trim().parse::<i64>().unwrap());
            if reported.len() == 25 {
                child.kill().unwrap(); // SIGKILL, while it keeps registering
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(reported.len(), 25, "child did not report registrations");

    let store = SqliteStore::open(SqliteConfig::new(&db)).await.unwrap();
    for id in &reported {
        let u = store.get_user(*id).await.unwrap();
        assert_eq!(u.template_count, 1);
    }
}

async fn child(path: String) {
    use std::io::Write;
    let store = SqliteStore::open(SqliteConfig::new(path)).await.unwrap();
    let model = common::contract::dlib();
    let mut rng = Rng::new(5);
    for i in 0.. {
        let u = store
            .create_user(
                NewUser::named(format!("durable {i}")),
                &model,
                &[NewTemplate {
                    embedding: rng.vector(128),
                    quality: 1.0,
                }],
            )
            .await
            .unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out, "committed {}", u.id).unwrap();
        out.flush().unwrap();
    }
}
