//! Who may make a decision, and at which threshold, over HTTP against the
//! real server and the real dlib models: an `enrol` key cannot add its own
//! face to someone else's account, only `admin` may loosen a threshold or
//! enrol a duplicate, one enrolment holds one person, templates per user are
//! capped and make the user's threshold stricter, failed attempts show no
//! distance, and a missing calibration stops the server.
#![allow(clippy::unwrap_used)]

mod common;

use common::{post_as as post, KIT, ROSE, ROSE_2};
use facegate::settings::StoreKind;
use serde_json::{json, Value};

fn image(rel: &str) -> Value {
    common::image_body(rel)
}

fn images(rels: &[&str]) -> Vec<String> {
    rels.iter()
        .map(|r| common::b64(&common::photo(r)))
        .collect()
}

async fn audit_outcomes(app: &common::TestApp, user: i64) -> Vec<(String, String)> {
    let (status, audit) = app
        .get(&format!("/admin/audit?user_id={user}&limit=50"))
        .await;
    assert_eq!(status, 200, "{audit}");
    audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The account-takeover path: before, `POST /users/{id}/faces` refused only
/// faces matching *other* users, so an `enrol` key added its own face to any
/// account and then verified as that person.
async fn enrol_key_cannot_take_over_an_account(store: StoreKind) {
    let app = common::spawn(store).await.unwrap();
    let (_, enrol) = app.new_key("enrolment desk", &["enrol"]).await;
    let (_, kiosk) = app.new_key("door kiosk", &["recognize"]).await;
    let (enrol, kiosk) = (
        common::client_with_key(&enrol),
        common::client_with_key(&kiosk),
    );

    let (status, rose) = post(
        &enrol,
        &app,
        "/register/",
        json!({ "name": "Rose Leslie", "image": images(&[ROSE])[0] }),
    )
    .await;
    assert_eq!(status, 200, "{rose}");
    let rose = rose["user_id"].as_i64().unwrap();

    // A stranger's face on Rose's account: refused, naming the scope.
    let (status, body) = post(&enrol, &app, &format!("/users/{rose}/faces"), image(KIT)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");
    assert_eq!(body["details"]["needed_scope"], "admin", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{body}"
    );
    let (_, user) = app.get(&format!("/users/{rose}")).await;
    assert_eq!(user["template_count"], 1, "nothing was added: {user}");
    // The refused face was a biometric comparison with Rose: it counts
    // towards her lockout, so the route is no lockout-free search for a
    // face that passes.
    let (_, lockout) = app.get(&format!("/admin/users/{rose}/lockout")).await;
    assert_eq!(lockout["failures"], 1, "{lockout}");
    // A face already enrolled is a 409 that names the user to admin only.
    let (status, body) = post(
        &enrol,
        &app,
        "/register/",
        json!({ "name": "Rose twin", "image": images(&[ROSE_2])[0] }),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "duplicate_face");
    assert!(body["details"].get("user_id").is_none(), "{body}");
    assert!(
        !body["message"]
            .as_str()
            .unwrap()
            .contains(&rose.to_string()),
        "{body}"
    );
    let (status, body) = app
        .post_json(
            "/register/",
            json!({ "name": "Rose twin", "image": images(&[ROSE_2])[0] }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["details"]["user_id"], rose, "{body}");
    // ... so the stranger still does not verify as Rose, and learns no
    // distance from trying.
    let (status, v) = post(&kiosk, &app, &format!("/users/{rose}/verify"), image(KIT)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], false, "{v}");
    assert!(
        v["distance"].is_null() && v["nearest_distance"].is_null(),
        "a failed attempt shows no distance: {v}"
    );
    assert!(v["confidence"].is_null() && v["fmr"].is_null(), "{v}");
    assert!(v["expected_false_matches"].is_null(), "{v}");

    // A second genuine photo of the same person: accepted.
    let (status, added) = post(&enrol, &app, &format!("/users/{rose}/faces"), image(ROSE_2)).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["template_count"], 2, "{added}");

    // allow_duplicate is for administrators only.
    let (status, body) = post(
        &enrol,
        &app,
        "/register/",
        json!({ "name": "Rose again", "image": images(&[ROSE])[0], "allow_duplicate": true }),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["details"]["needed_scope"], "admin", "{body}");
    let mut dup = image(ROSE_2);
    dup["allow_duplicate"] = json!(true);
    let (status, body) = post(&enrol, &app, &format!("/users/{rose}/faces"), dup).await;
    assert_eq!(status, 403, "{body}");

    // An administrator may add a face that does not verify; it is audited
    // as a security event, and the refused attempt as refused.
    let (status, added) = app
        .post_json(&format!("/users/{rose}/faces"), image(KIT))
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["template_count"], 3, "{added}");
    let outcomes = audit_outcomes(&app, rose).await;
    assert!(
        outcomes.contains(&("add_faces".into(), "admin_unverified_face".into())),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("add_faces".into(), "refused".into())),
        "{outcomes:?}"
    );
    let (_, audit) = app
        .get(&format!("/admin/audit?user_id={rose}&limit=50"))
        .await;
    // The audit says what was attempted, and the distance (for admins).
    let refused = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["action"] == "add_faces"
                && e["outcome"] == "refused"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("does not verify"))
        })
        .unwrap_or_else(|| panic!("no refused unverified face in {audit}"));
    assert!(refused["distance"].is_number(), "{refused}");
    assert!(
        outcomes.contains(&("add_faces".into(), "ok".into())),
        "{outcomes:?}"
    );

    // Templates: listed and deleted by an administrator only, never with
    // their vectors.
    let (status, body) = common::read(
        enrol
            .get(app.url(&format!("/users/{rose}/faces")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, faces) = app.get(&format!("/users/{rose}/faces")).await;
    assert_eq!(status, 200, "{faces}");
    let list = faces["faces"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{faces}");
    for f in list {
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["active_model", "created_at", "id", "model", "quality"],
            "{f}"
        );
        assert_eq!(f["model"], common::DLIB_MODEL.0);
    }
    let kit_template = list[2]["id"].as_i64().unwrap();
    let path = format!("/users/{rose}/faces/{kit_template}");
    let (status, body) = common::read(enrol.delete(app.url(&path)).send().await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app.delete(&path).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.delete(&path).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.delete(&format!("/users/{rose}/faces/abc")).await;
    assert_eq!(status, 422, "{body}");
    let (_, faces) = app.get(&format!("/users/{rose}/faces")).await;
    assert_eq!(faces["faces"].as_array().unwrap().len(), 2, "{faces}");
    let (_, v) = app.verify(rose, KIT).await;
    assert_eq!(
        v["match"], false,
        "the deleted face no longer verifies: {v}"
    );
    assert!(v["distance"].is_null(), "{v}");
    assert!(
        v["nearest_distance"].is_number(),
        "an administrator sees the distance: {v}"
    );
    let outcomes = audit_outcomes(&app, rose).await;
    assert!(
        outcomes.contains(&("delete_face".into(), "ok".into())),
        "{outcomes:?}"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_key_cannot_take_over_an_account_sqlite() {
    enrol_key_cannot_take_over_an_account(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_key_cannot_take_over_an_account_postgres() {
    enrol_key_cannot_take_over_an_account(StoreKind::Postgres).await;
}

/// Before, `?threshold=` accepted any distance from any caller:
/// `?threshold=1.5` verified a stranger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_may_only_tighten_a_threshold() {
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let (_, kiosk) = app.new_key("door kiosk", &["recognize"]).await;
    let kiosk = common::client_with_key(&kiosk);
    let (status, rose) = app.register("Rose Leslie", ROSE).await;
    assert_eq!(status, 200, "{rose}");
    let rose = rose["user_id"].as_i64().unwrap();
    let verify = format!("/users/{rose}/verify");

    // The default: the genuine pair matches, with its measured meaning.
    let (status, v) = post(&kiosk, &app, &verify, image(ROSE_2)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], true, "{v}");
    let d = v["distance"].as_f64().unwrap();
    let default = v["default_threshold"].as_f64().unwrap();
    assert_eq!(v["threshold"], v["default_threshold"]);
    assert_eq!(v["comparisons"], 1);
    let fmr = v["fmr"].as_f64().unwrap();
    assert!(fmr > 0.0 && fmr <= 1e-4, "{v}");
    assert_eq!(v["expected_false_matches"].as_f64().unwrap(), fmr);
    assert!(
        ["high", "medium"].contains(&v["confidence"].as_str().unwrap()),
        "{v}"
    );

    // Stricter than the default: allowed, and the same pair now fails.
    let (status, v) = post(
        &kiosk,
        &app,
        &format!("{verify}?threshold={}", d - 1e-3),
        image(ROSE_2),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], false, "{v}");
    assert!(v["distance"].is_null(), "{v}");

    // Looser: refused for a recognize key, on verify and identify alike.
    for path in [
        format!("{verify}?threshold=1.5"),
        "/recognize/?threshold=1.5".to_string(),
    ] {
        let (status, body) = post(&kiosk, &app, &path, image(KIT)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["details"]["needed_scope"], "admin", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("loosen"),
            "{body}"
        );
    }
    let (status, _) = post(
        &kiosk,
        &app,
        &format!("{verify}?threshold={}", default + 1e-3),
        image(ROSE_2),
    )
    .await;
    assert_eq!(status, 403, "even slightly looser needs admin");

    // An administrator's looser threshold is honoured, but the lockout
    // still counts the failure against the calibrated default.
    let (status, v) = app
        .post_json(&format!("{verify}?threshold=1.5"), image(KIT))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], true, "{v}");
    assert_eq!(v["confidence"], "low", "{v}");
    let (_, lockout) = app.get(&format!("/admin/users/{rose}/lockout")).await;
    assert_eq!(lockout["failures"], 1, "{lockout}");

    // Identification: a stricter threshold is allowed; a stranger's failed
    // search shows no distance to a non-admin key, and the admin sees it.
    let (status, r) = post(&kiosk, &app, "/recognize/?threshold=0.1", image(ROSE_2)).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["match"], false, "{r}");
    assert!(r["distance"].is_null() && r["confidence"].is_null(), "{r}");
    assert!(r["faces"][0]["distance"].is_null(), "{r}");
    assert!(
        r["nearest_distance"].is_null() && r["faces"][0]["nearest_distance"].is_null(),
        "{r}"
    );
    let (_, r) = post(&kiosk, &app, "/recognize/", image(ROSE_2)).await;
    assert_eq!(r["match"], true, "{r}");
    assert_eq!(r["user_id"], rose);
    assert!(r["distance"].is_number() && r["fmr"].is_number(), "{r}");
    let expected = r["expected_false_matches"].as_f64().unwrap();
    assert!(
        (expected - r["fmr"].as_f64().unwrap() * r["comparisons"].as_f64().unwrap()).abs() < 1e-12
    );
    let (_, r) = app
        .post_json("/recognize/?threshold=0.1", image(ROSE_2))
        .await;
    // The reference's `distance` stays null without a match; the admin
    // sees the nearest one beside it.
    assert!(r["distance"].is_null(), "{r}");
    assert!(
        r["nearest_distance"].is_number(),
        "admin sees the distance: {r}"
    );
    assert!(r["faces"][0]["nearest_distance"].is_number(), "{r}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_enrolment_is_one_person_and_templates_are_capped() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.thresholds.max_templates_per_user = 2;
    })
    .await
    .unwrap();
    // Two people in one enrolment: refused, naming the photo.
    let (status, body) = app
        .post_json(
            "/register/",
            json!({ "name": "Rose", "images": images(&[ROSE, KIT]) }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "photos_disagree");
    assert_eq!(body["details"]["index"], 1);
    let (_, users) = app.get("/users/").await;
    assert_eq!(users, serde_json::json!([]), "nothing stored: {users}");
    // Two photos of one person: one user with two templates.
    let (status, body) = app
        .post_json(
            "/register/",
            json!({ "name": "Rose", "images": images(&[ROSE, ROSE_2]) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["template_count"], 2);
    let rose = body["user_id"].as_i64().unwrap();
    // At the cap: one more is refused, before and inside the store.
    let (status, body) = app
        .post_json(&format!("/users/{rose}/faces"), image(ROSE_2))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "template_limit");
    assert_eq!(body["details"]["limit"], 2);
    let (status, body) = app
        .post_json(
            "/register/",
            json!({ "name": "Kit", "images": images(&[KIT, KIT, KIT]) }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "template_limit");
    let (_, stats) = app.get("/stats/").await;
    assert_eq!(stats["max_templates_per_user"], 2, "{stats}");
    app.cleanup().await;
}

/// Each template is one more chance for a stranger: a user with ten
/// templates is judged at a stricter distance than a user with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_templates_mean_a_stricter_verify_threshold() {
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let (_, one) = app.register("Rose (one photo)", ROSE).await;
    let one = one["user_id"].as_i64().unwrap();
    let ten = vec![images(&[ROSE])[0].clone(); 10];
    let (status, body) = app
        .post_json(
            "/register/",
            json!({ "name": "Rose (ten photos)", "images": ten, "allow_duplicate": true }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["template_count"], 10);
    let ten = body["user_id"].as_i64().unwrap();
    let (_, a) = app.verify(one, ROSE_2).await;
    let (_, b) = app.verify(ten, ROSE_2).await;
    assert_eq!(a["comparisons"], 1, "{a}");
    assert_eq!(b["comparisons"], 10, "{b}");
    let (ta, tb) = (
        a["default_threshold"].as_f64().unwrap(),
        b["default_threshold"].as_f64().unwrap(),
    );
    assert!(tb < ta, "ten templates {tb} must be stricter than one {ta}");
    // Matched or not (the admin sees either), the closest template is the same.
    let closest = |v: &serde_json::Value| {
        v["distance"]
            .as_f64()
            .or(v["nearest_distance"].as_f64())
            .unwrap_or_else(|| panic!("no distance in {v}"))
    };
    assert_eq!(closest(&a), closest(&b), "same closest template");
    // The expected false matches count every comparison made.
    if b["match"] == true {
        let (fa, fb) = (
            a["fmr"].as_f64().unwrap(),
            b["expected_false_matches"].as_f64().unwrap(),
        );
        assert!((fb - 10.0 * fa).abs() < 1e-12, "{a} {b}");
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_galleries_are_flagged_as_extrapolated() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.thresholds.expected_gallery_size = 100_000;
    })
    .await
    .unwrap();
    let (_, stats) = app.get("/stats/").await;
    let t = &stats["thresholds"];
    assert_eq!(stats["calibrated"], true, "{stats}");
    assert_eq!(t["identify"]["extrapolated"], true, "{stats}");
    assert_eq!(t["identify"]["comparisons"], 100_000, "{stats}");
    let limit = t["measured_comparisons_limit"].as_u64().unwrap();
    assert!((5_000..100_000).contains(&limit), "{stats}");
    assert!(t["identify"]["threshold"].as_f64().unwrap() < t["verify"].as_f64().unwrap());
    let (_, rose) = app.register("Rose Leslie", ROSE).await;
    assert!(rose["user_id"].is_i64(), "{rose}");
    let (_, r) = app.recognize(ROSE_2).await;
    assert_eq!(r["threshold_extrapolated"], true, "{r}");
    app.cleanup().await;

    // A small gallery stays within the measured curve.
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let (_, stats) = app.get("/stats/").await;
    assert_eq!(
        stats["thresholds"]["identify"]["extrapolated"], false,
        "{stats}"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_calibration_no_start_unless_allowed() {
    let empty = tempfile::tempdir().unwrap();
    // The binary exits non-zero and names the file it looked for.
    let out = common::facegate_binary(env!("CARGO_BIN_EXE_facegate"), &empty.path().join("data"))
        .env("FACEGATE__FACE__WORKERS", "1")
        .env("FACEGATE__THRESHOLDS__CALIBRATION_DIR", empty.path())
        .env("FACEGATE__SERVER__PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success(), "started without a calibration");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = empty.path().join("dlib_resnet_v1.json");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("allow_uncalibrated"),
        "names the escape: {stderr}"
    );

    // Explicitly allowed: it starts, and says so.
    let dir = empty.path().to_path_buf();
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.thresholds.calibration_dir = dir;
        s.thresholds.allow_uncalibrated = true;
    })
    .await
    .unwrap();
    let (_, stats) = app.get("/stats/").await;
    assert_eq!(stats["calibrated"], false, "{stats}");
    assert_eq!(stats["thresholds"]["calibrated"], false, "{stats}");
    assert!(
        stats["thresholds"]["source"]
            .as_str()
            .unwrap()
            .contains("UNCALIBRATED"),
        "{stats}"
    );
    app.cleanup().await;
}
