//! The security mechanisms over HTTP against the real server: API keys and
//! scopes, revocation, the verification lockout, the audit log, rate
//! limits, CORS, security headers, TLS, and that no image bytes are ever
//! written to the store.
#![allow(clippy::unwrap_used)]

mod common;

use common::{post_as as post_with, KIT, ROSE, ROSE_2};
use facegate::settings::StoreKind;
use serde_json::{json, Value};

fn image(rel: &str) -> Value {
    json!({ "name": "Rose Leslie", "image": common::b64(&common::photo(rel)) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_scopes_decide_who_may_do_what() {
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let anonymous = reqwest::Client::new();

    // Public: health and docs.
    let res = anonymous.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = anonymous
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // No key, a malformed key, an unknown key: 401 everywhere else.
    let wrong = common::client_with_key(&format!("fg_{}_{}", "0".repeat(12), "0".repeat(64)));
    let garbage = common::client_with_key("hunter2");
    for client in [&anonymous, &wrong, &garbage] {
        for (status, body) in [
            common::read(client.get(app.url("/users/")).send().await.unwrap()).await,
            post_with(client, &app, "/recognize/", image(ROSE)).await,
            post_with(client, &app, "/register/", image(ROSE)).await,
            common::read(client.get(app.url("/admin/audit")).send().await.unwrap()).await,
        ] {
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["error"], "unauthorized");
        }
    }

    // Scopes: enrol may enrol only; recognize may identify and verify only.
    let (_, enrol) = app.new_key("enrolment desk", &["enrol"]).await;
    let (_, kiosk) = app.new_key("door kiosk", &["recognize"]).await;
    let (enrol, kiosk) = (
        common::client_with_key(&enrol),
        common::client_with_key(&kiosk),
    );
    let (status, reg) = post_with(&enrol, &app, "/register/", image(ROSE)).await;
    assert_eq!(status, 200, "{reg}");
    let id = reg["user_id"].as_i64().unwrap();
    let (status, body) = post_with(&kiosk, &app, "/register/", image(KIT)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["details"]["needed_scope"], "enrol");
    let (status, body) = post_with(&enrol, &app, "/recognize/", image(ROSE_2)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["details"]["needed_scope"], "recognize");
    let (status, rec) = post_with(&kiosk, &app, "/recognize/", image(ROSE_2)).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["user_id"], id);
    let (status, v) = post_with(&kiosk, &app, &format!("/users/{id}/verify"), image(ROSE_2)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], true);
    for client in [&enrol, &kiosk] {
        let (status, body) = common::read(
            client
                .delete(app.url(&format!("/users/{id}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        let (status, body) =
            common::read(client.get(app.url("/admin/keys")).send().await.unwrap()).await;
        assert_eq!(status, 403, "{body}");
    }

    // Percent-encoded paths reach the same routes and need the same keys.
    for path in ["/admin/%6beys", "/admin/%61udit", "/%75sers/", "/%73tats/"] {
        let (status, body) = common::read(anonymous.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, body) = common::read(kiosk.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(status, 403, "{path}: {body}");
    }

    // X-API-Key works as well as Authorization: Bearer.
    let res = anonymous
        .get(app.url("/stats/"))
        .header("x-api-key", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // Revocation takes effect at once; the list shows it, never a secret.
    let (key_id, token) = app.new_key("temporary", &["recognize"]).await;
    let temp = common::client_with_key(&token);
    let (status, _) = post_with(&temp, &app, "/recognize/", image(ROSE_2)).await;
    assert_eq!(status, 200);
    let (status, body) = app.delete(&format!("/admin/keys/{key_id}")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_with(&temp, &app, "/recognize/", image(ROSE_2)).await;
    assert_eq!(status, 401, "revoked key accepted: {body}");
    let (_, keys) = app.get("/admin/keys").await;
    let listed = keys.to_string();
    assert!(!listed.contains(&token[16..]), "a secret was listed");
    let temp_row = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id)
        .unwrap();
    assert!(temp_row["revoked_at"].is_string(), "{temp_row}");
    let (status, _) = app.delete("/admin/keys/999999").await;
    assert_eq!(status, 404);
    let (status, body) = app
        .post_json("/admin/keys", json!({ "name": "x", "scopes": ["root"] }))
        .await;
    assert_eq!(status, 422, "{body}");

    // Security headers on API answers, errors included.
    let res = anonymous.get(app.url("/users/")).send().await.unwrap();
    let h = res.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    // No CORS grant without configured origins.
    let res = anonymous
        .get(app.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_verifications_delay_then_disable_until_an_admin_resets() {
    // Disable at the third failure (as low as the settings allow lets the
    // test reach it without waiting out a delay); the default is 5 and 50.
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.security.lockout_delay_after = 3;
        s.security.lockout_disable_after = 3;
    })
    .await
    .unwrap();
    let (_, reg) = app.register("Rose Leslie", ROSE).await;
    let id = reg["user_id"].as_i64().unwrap();
    let verify = format!("/users/{id}/verify");
    let v = |rel: &str| json!({ "image": common::b64(&common::photo(rel)) });
    for n in 1..=3 {
        let (status, body) = app.post_json(&verify, v(KIT)).await;
        assert_eq!(status, 200, "failure {n}: {body}");
        assert_eq!(body["match"], false);
    }
    let (status, body) = app.post_json(&verify, v(ROSE_2)).await;
    assert_eq!(status, 423, "{body}");
    assert_eq!(body["error"], "verification_disabled");
    let (_, l) = app.get(&format!("/admin/users/{id}/lockout")).await;
    assert_eq!(l["disabled"], true, "{l}");
    assert_eq!(l["failures"], 3);
    let (status, l) = app
        .post_json(&format!("/admin/users/{id}/lockout/reset"), json!({}))
        .await;
    assert_eq!(status, 200, "{l}");
    assert_eq!(l["failures"], 0);
    assert_eq!(l["disabled"], false);
    let (status, body) = app.post_json(&verify, v(ROSE_2)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"], true);
    // A photo without a face is not a failed verification.
    let (status, _) = app.post_json(&verify, v("noface/dlib_eagle.jpg")).await;
    assert_eq!(status, 400);
    let (_, l) = app.get(&format!("/admin/users/{id}/lockout")).await;
    assert_eq!(l["failures"], 0, "{l}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_failed_verification_in_a_row_is_delayed() {
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let (_, reg) = app.register("Rose Leslie", ROSE).await;
    let id = reg["user_id"].as_i64().unwrap();
    let body = json!({ "image": common::b64(&common::photo(KIT)) });
    for _ in 0..5 {
        let (status, v) = app
            .post_json(&format!("/users/{id}/verify"), body.clone())
            .await;
        assert_eq!((status, v["match"].clone()), (200, json!(false)), "{v}");
    }
    let res = app
        .client
        .post(app.url(&format!("/users/{id}/verify")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, v) = common::read(res).await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"], "verification_delayed");
    assert!((25..=30).contains(&retry), "at least 30 s: {retry}");
    // A second user: a wrong face at the loosest threshold "matches", but
    // still counts as a failure against the calibrated default.
    let (_, other) = app.register("Kit Harington", KIT).await;
    let other = other["user_id"].as_i64().unwrap();
    let (status, loose) = app
        .post_json(
            &format!("/users/{other}/verify?threshold=4"),
            json!({ "image": common::b64(&common::photo(ROSE)) }),
        )
        .await;
    assert_eq!(status, 200, "{loose}");
    assert_eq!(loose["match"], true, "{loose}");
    let (_, l) = app.get(&format!("/admin/users/{other}/lockout")).await;
    assert_eq!(
        l["failures"], 1,
        "a forced match must not clear the count: {l}"
    );
}

async fn audit_flow(store: StoreKind) {
    let Some(app) = common::spawn(store).await else {
        return;
    };
    let (_, reg) = app.register("Rose Leslie", ROSE).await;
    let id = reg["user_id"].as_i64().unwrap();
    let (_, rec) = app.recognize(ROSE_2).await;
    assert_eq!(rec["user_id"], id, "{rec}");
    let (_, v) = app.verify(id, KIT).await;
    assert_eq!(v["match"], false);
    let (status, _) = app.register("Nobody", "noface/dlib_eagle.jpg").await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post_json(
            &format!("/users/{id}/faces"),
            json!({ "image": common::b64(&common::photo(ROSE_2)), "allow_duplicate": true }),
        )
        .await;
    assert_eq!(status, 200);
    app.new_key("audited", &["recognize"]).await;
    let (status, _) = app.delete(&format!("/users/{id}")).await;
    assert_eq!(status, 200);

    let (status, page) = app.get("/admin/audit?limit=100").await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    let find = |action: &str| {
        events
            .iter()
            .find(|e| e["action"] == action && e["outcome"] != "refused")
            .unwrap_or_else(|| panic!("no {action} event in {page}"))
    };
    let enrol = find("enrol");
    assert_eq!(enrol["outcome"], "ok");
    assert_eq!(enrol["user_id"], id);
    assert!(enrol["key_id"].is_i64(), "{enrol}");
    assert_eq!(enrol["client"], "127.0.0.1");
    let identify = find("identify");
    assert_eq!(identify["outcome"], "match");
    assert!(identify["distance"].as_f64().unwrap() > 0.0);
    let verify = find("verify");
    assert_eq!(verify["outcome"], "no_match");
    assert_eq!(verify["user_id"], id);
    assert!(verify["distance"].is_f64());
    let delete = find("delete");
    assert_eq!(delete["outcome"], "ok");
    assert_eq!(find("add_faces")["user_id"], id);
    assert!(find("key_create")["detail"]
        .as_str()
        .unwrap()
        .starts_with("key "));
    assert!(events
        .iter()
        .any(|e| e["action"] == "enrol" && e["outcome"] == "refused" && e["detail"] == "no_face"));
    // The rows outlive the deleted user, and filter by user.
    let (_, mine) = app.get(&format!("/admin/audit?user_id={id}")).await;
    assert!(mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["user_id"] == id));
    assert!(mine["count"].as_u64().unwrap() >= 3);
    let (_, future) = app.get("/admin/audit?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future["count"], 0);
    let (status, _) = app.get("/admin/audit?since=yesterday").await;
    assert_eq!(status, 422);
    let (_, one) = app.get("/admin/audit?limit=1").await;
    let before = one["next_before"].as_i64().unwrap();
    let (_, next) = app
        .get(&format!("/admin/audit?limit=1&before={before}"))
        .await;
    assert!(next["events"][0]["id"].as_i64().unwrap() < before);
    // Nothing biometric: no field is an array, and no long text.
    for e in events {
        for (k, v) in e.as_object().unwrap() {
            assert!(!v.is_array() && !v.is_object(), "{k} = {v}");
            assert!(v.as_str().is_none_or(|s| s.len() < 100), "{k} = {v}");
        }
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_audited_without_biometric_data_on_the_embedded_store() {
    audit_flow(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_audited_without_biometric_data_on_postgres() {
    audit_flow(StoreKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.security.rate_per_key_per_minute = 60;
        s.security.rate_burst = 3;
    })
    .await
    .unwrap();
    // A burst of 3 (+1) at once, then one a second: 8 quick requests must
    // meet the limit.
    let mut retry = None;
    let mut ok = 0;
    for _ in 0..8 {
        let res = app.client.get(app.url("/stats/")).send().await.unwrap();
        if res.status().as_u16() == 429 {
            retry = res.headers().get("retry-after").cloned();
            let (_, body) = common::read(res).await;
            assert_eq!(body["error"], "rate_limited", "{body}");
        } else {
            ok += 1;
        }
    }
    assert!(retry.is_some(), "no request was limited");
    assert!((4..=5).contains(&ok), "{ok} requests passed");
    // Public routes, the probes among them, are not limited.
    for path in ["/health", "/livez", "/readyz"] {
        for _ in 0..20 {
            let res = reqwest::get(app.url(path)).await.unwrap();
            assert_eq!(res.status().as_u16(), 200, "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_configured_origins() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.security.cors_origins = vec!["https://app.example".into()];
    })
    .await
    .unwrap();
    let preflight = |origin: &'static str| {
        let client = reqwest::Client::new();
        let url = app.url("/recognize/");
        async move {
            client
                .request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type",
                )
                .send()
                .await
                .unwrap()
        }
    };
    let ok = preflight("https://app.example").await;
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight("https://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-addext")
        .arg("subjectAltName=DNS:localhost")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.security.tls_cert = Some(cert.clone());
        s.security.tls_key = Some(key.clone());
    })
    .await
    .unwrap();
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let out = std::process::Command::new("curl")
        .args(["-s", "-i", "--cacert"])
        .arg(&cert)
        .arg(format!("https://localhost:{port}/health"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("HTTP/"), "{text}");
    assert!(text.contains("\"healthy\""), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{text}"
    );
    // Plain HTTP to the TLS port is refused.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/health")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_switched_off_explicitly_lets_anyone_in() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| s.security.auth = false)
        .await
        .unwrap();
    let res = reqwest::get(app.url("/users/")).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

/// JPEG and PNG signatures, raw and base64-encoded.
fn image_signatures() -> Vec<&'static [u8]> {
    vec![
        &[0xFF, 0xD8, 0xFF],
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
        b"/9j/",
        b"iVBORw0KGgo",
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_image_bytes_reach_the_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let app = common::spawn_with(StoreKind::Sqlite, |s| s.store.data_dir = dir.clone())
        .await
        .unwrap();
    let (_, reg) = app.register("Rose Leslie", ROSE).await;
    let id = reg["user_id"].as_i64().unwrap();
    app.verify(id, ROSE_2).await;
    app.recognize(KIT).await;
    app.post_json(
        &format!("/users/{id}/faces"),
        json!({ "image": common::b64(&common::photo(ROSE_2)), "allow_duplicate": true }),
    )
    .await;
    // A PNG too.
    let png = {
        let img = face_core::decode(&common::photo(ROSE), &Default::default())
            .unwrap()
            .image;
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, face_core::image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    app.post_json("/recognize/", json!({ "image": common::b64(&png) }))
        .await;

    let mut scanned = 0usize;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            scanned += bytes.len();
            for sig in image_signatures() {
                assert!(!contains(&bytes, sig), "{} holds {sig:?}", path.display());
            }
        }
    }
    assert!(scanned > 10_000, "nothing was written? {scanned} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_image_bytes_reach_postgres() {
    let Some(app) = common::spawn(StoreKind::Postgres).await else {
        return;
    };
    let (_, reg) = app.register("Rose Leslie", ROSE).await;
    let id = reg["user_id"].as_i64().unwrap();
    app.verify(id, ROSE_2).await;
    app.recognize(KIT).await;
    let url = app.database_url().unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut scanned = 0usize;
    for table in [
        "users",
        "templates",
        "models",
        "api_keys",
        "verify_lockouts",
        "audit_log",
    ] {
        let rows = client
            .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
            .await
            .unwrap();
        for r in rows {
            let text: String = r.get(0);
            scanned += text.len();
            for sig in [&b"/9j/"[..], b"iVBORw0KGgo", b"\\xffd8ff", b"\\x89504e47"] {
                assert!(!contains(text.as_bytes(), sig), "{table}: {sig:?}");
            }
        }
    }
    assert!(scanned > 1000, "{scanned}");
    app.cleanup().await;
}
