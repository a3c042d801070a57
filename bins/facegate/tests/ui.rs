//! The page for people (`/ui`) in a real browser: Debian's Chromium driven
//! by playwright-core (`tests/browser/ui.mjs`, installed by
//! `scripts/setup.sh --test`), against a real server seeded here. Checks
//! sign-in by keyboard, what each key's scopes show, the administrator's
//! actions (a key created and revoked, a lockout reset, a template and a
//! user deleted), axe-core on every page, that no request leaves loopback,
//! and saves a 390×844 screenshot of each page under
//! `target/ui-screenshots/`. With a camera: Chromium's fake camera plays a
//! shared clip (d12 to enrol and identify, d13, frontal only, for a
//! challenge that fails), and for the challenge that passes the test
//! replaces `getUserMedia` with a canvas playing the d12 frames that turn
//! as the drawn steps ask (the fake camera's file is fixed before the
//! steps are drawn).
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

/// Frames of d12 (start, end) that turn as the steps ask, the first
/// frontal (the clip turns left on 36–50, right on 79–92, left on 162–173;
/// `tests/challenge.rs`).
fn d12_runs() -> Value {
    json!({
        "turn_left,turn_right": [30, 110],
        "turn_right,turn_left": [60, 183],
        "turn_left,turn_right,turn_left": [30, 183],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_enrolled_from_the_camera_is_identified_live_and_verified_by_the_challenge() {
    let Some(dir) = tools() else { return };
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        common::use_fast_pipeline(s);
        s.face.workers = 2;
    })
    .await
    .unwrap();
    // A reception desk's key: enrol and recognize, no admin.
    let (_, key) = app.new_key("reception", &["enrol", "recognize"]).await;
    let video = common::shared().join("video");
    let clip = |name: &str| video.join(name).display().to_string();
    let (name, reference) = ("Man With Glasses", "badge-d12");

    let enrolled = run(
        &dir,
        "enrolAndIdentify",
        &app.base,
        json!({"key": key, "clip": clip("d12.mjpeg"), "name": name, "reference": reference}),
    );
    println!("enrol and identify: {enrolled}");
    let (status, found) = app.get(&format!("/users/?external_ref={reference}")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["name"], name, "{found}");
    let user_id = found[0]["id"].as_i64().unwrap();

    let failed = run(
        &dir,
        "challengeFrontal",
        &app.base,
        json!({"key": key, "clip": clip("d13.mjpeg"), "reference": reference,
               "expect": "a turn took too long"}),
    );
    println!("frontal only: {failed}");
    let passed = run(
        &dir,
        "challengePass",
        &app.base,
        json!({"key": key, "clip": clip("d12.mjpeg"), "reference": reference,
               "runs": d12_runs()}),
    );
    println!("challenge: {passed}");
    assert!(
        passed["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "Now look straight ahead again"),
        "{passed}"
    );

    // What the server decided, as its audit log says.
    let (_, audit) = app
        .get(&format!("/admin/audit?user_id={user_id}&limit=100"))
        .await;
    let rows: Vec<(String, String, String)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (text("action"), text("outcome"), text("detail"))
        })
        .collect();
    let has = |action: &str, outcome: &str, detail: &str| {
        rows.iter()
            .any(|(a, o, d)| a == action && o == outcome && d.contains(detail))
    };
    assert!(
        has("liveness_session", "failed", "step_timeout"),
        "{rows:?}"
    );
    assert!(has("liveness_session", "passed", ""), "{rows:?}");
    assert!(
        rows.iter().any(|(a, o, _)| a == "verify" && o == "match"),
        "{rows:?}"
    );
    for page in [
        "enrol-camera",
        "enrol-done",
        "identify-live",
        "verify-challenge",
        "verify-passed",
        "verify-failed",
    ] {
        assert!(
            screenshots().join(format!("{page}.png")).is_file(),
            "{page}"
        );
    }
    app.cleanup().await;
}
