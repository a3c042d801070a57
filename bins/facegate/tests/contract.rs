//! `/openapi.json` as a contract: schemathesis (pinned 4.x, installed in
//! the test virtual environment by `scripts/setup.sh --test`) generates
//! requests from the document and checks every answer against it — status
//! codes, bodies, headers, auth, undeclared methods, and that no request is
//! a server error — on a real server with an enrolled user, with an admin
//! key and without one. The committed `tests/contract/schemathesis.toml`
//! lists the few exemptions, each with its reason.
//!
//! The suite runs a fixed seed so CI is repeatable; a longer search:
//! `FACEGATE_CONTRACT_EXAMPLES=500 FACEGATE_CONTRACT_SEED=random cargo test -p facegate --test contract`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::ROSE;
use facegate::settings::StoreKind;

fn schemathesis() -> PathBuf {
    let bin = std::env::var_os("FACEGATE_PYTHON")
        .map(PathBuf::from)
        .and_then(|py| py.parent().map(|d| d.join("schemathesis")))
        .unwrap_or_else(|| common::workspace().join(".cache/pyenv/bin/schemathesis"));
    assert!(
        bin.exists(),
        "schemathesis not found at {}: run scripts/setup.sh --test (it installs the pinned \
         version into .cache/pyenv)",
        bin.display()
    );
    bin
}

/// Runs schemathesis against `app` (with `token` as the key, if any) and
/// fails with its report unless it found nothing.
async fn run_schemathesis(app: &common::TestApp, token: Option<&str>, what: &str) {
    let examples = std::env::var("FACEGATE_CONTRACT_EXAMPLES").unwrap_or_else(|_| "25".into());
    let seed = std::env::var("FACEGATE_CONTRACT_SEED").unwrap_or_else(|_| "20261201".into());
    let config = common::workspace().join("bins/facegate/tests/contract/schemathesis.toml");
    let workdir = tempfile::tempdir().unwrap();
    // A hung run must not hang the suite: each run has 150 s at most.
    let mut cmd = Command::new("timeout");
    cmd.current_dir(workdir.path())
        .arg("150")
        .arg(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(app.url("/openapi.json"))
        .args(["--checks", "all", "--max-examples", &examples, "--no-color"]);
    if seed != "random" {
        cmd.args(["--seed", &seed]);
    }
    if let Some(token) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
    }
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis {what}: exit {:?}\n{report}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    // It exits 0 only without failures; the summary says so in words too.
    let summary = report.lines().last().unwrap_or_default();
    assert!(
        !summary.contains("failure") && !summary.contains("error"),
        "schemathesis {what}: {summary}\n{report}"
    );
    println!("schemathesis {what}: {summary}");
}

async fn contract(store: StoreKind) {
    let Some(app) = common::spawn(store).await else {
        return;
    };
    // Something to find: an enrolled user (id 1) and a second key.
    let (status, body) = app.register("Rose Leslie", ROSE).await;
    assert_eq!(status, 200, "{body}");
    app.new_key("kiosk", &["recognize"]).await;

    run_schemathesis(&app, Some(&app.token), "with an admin key").await;
    run_schemathesis(&app, None, "without a key").await;

    // The run could not have revoked its own key (409), so it is still good.
    let (status, me) = app.get("/auth/whoami").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["scopes"], serde_json::json!(["admin"]), "{me}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_holds_on_the_embedded_store() {
    contract(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_holds_on_postgres() {
    contract(StoreKind::Postgres).await;
}

/// Guard behaviour the contract relies on, checked directly: a method a
/// path lacks is 405 with `Allow` (before any key is asked for), and a key
/// cannot revoke itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_methods_and_self_revocation() {
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let res = reqwest::Client::new()
        .request(reqwest::Method::PUT, app.url("/users/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD");
    let (_, body) = common::read(res).await;
    assert_eq!(body["error"], "method_not_allowed", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("GET"), "{body}");
    let res = app
        .client
        .request(reqwest::Method::TRACE, app.url("/users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, DELETE, HEAD");
    // HEAD answers as GET does, without the body: a HEAD health probe works.
    let res = reqwest::Client::new()
        .head(app.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().is_empty());
    let res = reqwest::Client::new()
        .head(app.url("/users/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "HEAD needs GET's access");

    let (status, me) = app.get("/auth/whoami").await;
    assert_eq!(status, 200, "{me}");
    let id = me["key_id"].as_i64().unwrap();
    assert_eq!(me["name"], "test admin");
    assert_eq!(me["authentication"], true);
    let (status, body) = app.delete(&format!("/admin/keys/{id}")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot revoke itself"),
        "{body}"
    );
    let (status, _) = app.get("/auth/whoami").await;
    assert_eq!(status, 200, "the key still works");

    // whoami for a narrower key names exactly its scopes; without a key, 401.
    let (_, token) = app.new_key("kiosk", &["recognize"]).await;
    let (status, me) = common::read(
        common::client_with_key(&token)
            .get(app.url("/auth/whoami"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["scopes"], serde_json::json!(["recognize"]));
    assert_eq!(me["name"], "kiosk");
    let (status, _) = common::read(
        reqwest::Client::new()
            .get(app.url("/auth/whoami"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    app.cleanup().await;
}
