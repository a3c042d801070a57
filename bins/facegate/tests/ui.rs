//! The page for people (`/ui`) in a real browser: Debian's Chromium driven
//! by playwright-core (`tests/browser/ui.mjs`, installed by
//! `scripts/setup.sh --test`), against a real server seeded here. Checks
//! sign-in by keyboard, what each key's scopes show, the administrator's
//! actions (a key created and revoked, a lockout reset, a template and a
//! user deleted), axe-core on every page, that no request leaves loopback,
//! and saves a 390×844 screenshot of each page under
//! `target/ui-screenshots/`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use facegate::settings::StoreKind;
use serde_json::{json, Value};

fn browser_dir() -> PathBuf {
    common::workspace().join("bins/facegate/tests/browser")
}

/// The browser tools, or why not: a loud skip on a developer's machine
/// without them, a failure under CI.
fn tools() -> Option<PathBuf> {
    let dir = browser_dir();
    let ready = dir.join("node_modules/playwright-core").is_dir()
        && std::path::Path::new("/usr/bin/chromium").exists();
    if ready {
        return Some(dir);
    }
    let why = "the browser tests need Chromium and tests/browser/node_modules \
               (scripts/setup.sh --test installs both)";
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("SKIPPED: {why}");
    None
}

fn screenshots() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::workspace().join("target"))
        .join("ui-screenshots")
}

/// Runs one scenario of `ui.mjs`; its findings.
fn run(dir: &std::path::Path, scenario: &str, base: &str, args: Value) -> Value {
    let out = Command::new("node")
        .current_dir(dir)
        .arg("ui.mjs")
        .args([scenario, base])
        .arg(screenshots())
        .arg(args.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let findings: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "{scenario}: no findings; stdout {stdout}, stderr {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(out.status.success(), "{scenario}: {findings:#}");
    findings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_in_a_real_browser_for_each_key() {
    let Some(dir) = tools() else { return };
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    // Seeded through the API: a user with two templates, and one whose
    // verification is failing.
    let photos = [common::ROSE, common::ROSE_2].map(|p| common::b64(&common::photo(p)));
    let (status, rose) = app
        .post_json(
            "/register/",
            json!({"name": "Rose Leslie", "images": photos}),
        )
        .await;
    assert_eq!(status, 200, "{rose}");
    let (status, kit) = app.register("Kit Harington", common::KIT).await;
    assert_eq!(status, 200, "{kit}");
    let kit_id = kit["user_id"].as_i64().unwrap();
    for _ in 0..2 {
        let (status, v) = app.verify(kit_id, common::ROSE).await;
        assert_eq!((status, &v["match"]), (200, &json!(false)), "{v}");
    }
    let (_, recognize) = app.new_key("ui kiosk", &["recognize"]).await;

    let admin = run(
        &dir,
        "admin",
        &app.base,
        json!({"admin": app.token, "user_name": "Rose Leslie",
               "locked_name": "Kit Harington", "locked_id": kit_id}),
    );
    println!("admin: {admin}");
    assert_eq!(admin["created_token_prefix"], "fg_", "{admin}");
    // What the page did, as the API sees it.
    let (status, _) = app.get(&format!("/users/{}", rose["user_id"])).await;
    assert_eq!(status, 404, "the user was deleted");
    let (_, lockout) = app.get(&format!("/admin/users/{kit_id}/lockout")).await;
    assert_eq!(lockout["failures"], 0, "{lockout}");
    let (_, keys) = app.get("/admin/keys").await;
    let created = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ui test kiosk")
        .unwrap();
    assert!(created["revoked_at"].is_string(), "{created}");

    let kiosk = run(
        &dir,
        "recognize",
        &app.base,
        json!({"recognize": recognize}),
    );
    println!("recognize: {kiosk}");
    for page in [
        "signin",
        "enrol",
        "verify",
        "identify",
        "admin-users",
        "admin-keys",
        "admin-lockouts",
        "admin-audit",
        "admin-stats",
    ] {
        assert!(
            screenshots().join(format!("{page}.png")).is_file(),
            "{page}"
        );
    }
    app.cleanup().await;
}
