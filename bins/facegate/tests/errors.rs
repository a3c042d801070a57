//! Every error path of the API: its status, its JSON shape and message.
#![allow(clippy::unwrap_used)]

mod common;

use facegate::settings::StoreKind;
use serde_json::{json, Value};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], want_code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_json_errors() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| s.server.body_limit_bytes = 2_000_000)
        .await
        .unwrap();

    // No face.
    let (s, b) = app.register("Dog", "noface/dlib_dog.jpg").await;
    assert_error(s, &b, 400, "no_face");
    assert_eq!(b["message"], "No face detected");
    let (s, b) = app.recognize("noface/dlib_giraffe.jpg").await;
    assert_error(s, &b, 400, "no_face");

    // Several faces at enrolment, with the count.
    let (s, b) = app
        .register("Group", "group/face_recognition_two_people.jpg")
        .await;
    assert_error(s, &b, 400, "multiple_faces");
    assert!(b["message"]
        .as_str()
        .unwrap()
        .contains("Multiple faces detected"));
    assert_eq!(b["details"]["count"], 2);

    // Face too small to enrol, with the reason.
    let (s, b) = app
        .register("Tiny", "people/obama/face_recognition_obama-240p.jpg")
        .await;
    assert_error(s, &b, 400, "low_quality");
    assert_eq!(b["details"]["issues"][0]["reason"], "too_small", "{b}");

    // Broken images.
    let (s, b) = app
        .post_json("/register/", json!({"name": "x", "image": "not base64!!"}))
        .await;
    assert_error(s, &b, 400, "bad_image");
    let jpeg = common::photo("people/obama/face_recognition_obama.jpg");
    let (s, b) = app
        .post_json(
            "/recognize/",
            json!({"image": common::b64(&jpeg[..jpeg.len() / 2])}),
        )
        .await;
    assert_error(s, &b, 400, "bad_image");
    assert!(b["message"].as_str().unwrap().contains("truncated"), "{b}");
    let (s, b) = app
        .post_json(
            "/recognize/",
            json!({"image": common::b64(b"just some text")}),
        )
        .await;
    assert_error(s, &b, 400, "bad_image");
    let data_url = format!(
        "data:image/jpeg;base64,{}",
        common::b64(&common::photo("people/obama/face_recognition_obama2.jpg"))
    );
    let (s, b) = app
        .post_json("/recognize/", json!({"image": data_url}))
        .await;
    assert_eq!(s, 200, "data: URL prefix must be accepted: {b}");

    // Missing or invalid fields.
    let (s, b) = app.post_json("/register/", json!({"name": "x"})).await;
    assert_error(s, &b, 422, "invalid_request");
    let (s, b) = app
        .post_json(
            "/register/",
            json!({"name": "   ", "image": common::b64(&jpeg)}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_request");
    let res = app
        .client
        .post(app.url("/register/"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (s, b) = common::read(res).await;
    assert_error(s, &b, 422, "invalid_json");

    // Thresholds: out of range, not a number.
    for q in ["-1", "0", "NaN", "inf", "99", "abc"] {
        let (s, b) = app
            .post_json(
                &format!("/recognize/?threshold={q}"),
                json!({"image": common::b64(&jpeg)}),
            )
            .await;
        assert_error(s, &b, 422, "invalid_request");
        assert!(
            b["message"].as_str().unwrap().contains("at most 4"),
            "{q}: {b}"
        );
    }

    // Ids that are not ids.
    for id in ["abc", "-3", "0", "1.5", "%2e%2e%2fetc%2fpasswd"] {
        let (s, b) = app.get(&format!("/users/{id}")).await;
        assert_error(s, &b, 422, "invalid_request");
    }
    let (s, b) = app.get("/users/424242").await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .verify(424242, "people/obama/face_recognition_obama.jpg")
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.get("/no/such/route").await;
    assert_error(s, &b, 404, "not_found");

    // Wrong content type.
    let res = app
        .client
        .post(app.url("/recognize/"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    let (s, b) = common::read(res).await;
    assert_error(s, &b, 415, "unsupported_media_type");

    // Too large.
    let big = vec![b'A'; 3_000_000];
    let res = app
        .client
        .post(app.url("/recognize/"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (s, b) = common::read(res).await;
    assert_error(s, &b, 413, "payload_too_large");

    // Enrolling the same face twice is a conflict naming the user, unless allowed.
    let (s, first) = app
        .register("Obama", "people/obama/face_recognition_obama.jpg")
        .await;
    assert_eq!(s, 200, "{first}");
    let (s, b) = app
        .register("Obama again", "people/obama/face_recognition_obama_1.jpg")
        .await;
    assert_error(s, &b, 409, "duplicate_face");
    assert_eq!(b["details"]["user_id"], first["user_id"]);
    let (s, b) = app
        .post_json(
            "/register/",
            json!({"name": "Obama twin", "image": common::b64(&jpeg), "allow_duplicate": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_sheds_requests_with_retry_after() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.face.workers = 1;
        s.face.queue_depth = 1;
    })
    .await
    .unwrap();
    let body = json!({"image": common::b64(&common::photo("group/dlib_2008_002470.jpg"))});
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = app.url("/recognize/");
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let res = client.post(url).json(&body).send().await.unwrap();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let (s, b) = common::read(res).await;
            (s, b, retry)
        }));
    }
    let mut busy = 0;
    for t in tasks {
        let (s, b, retry) = t.await.unwrap();
        match s {
            // Nobody is enrolled: a processed request is a 200 with no match.
            200 => assert_eq!(b["match"], false),
            503 => {
                assert_eq!(b["error"], "busy");
                assert_eq!(retry.as_deref(), Some("1"));
                busy += 1;
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert!(
        busy >= 1,
        "8 concurrent requests on 1 worker with a queue of 1 shed none"
    );
}

/// A real 1×1 PNG whose header is patched to claim `w`×`h` (CRC fixed, so
/// only the size is a lie).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    face_core::image::RgbImage::new(1, 1)
        .write_to(&mut out, face_core::image::ImageFormat::Png)
        .unwrap();
    let mut png = out.into_inner();
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Hostile input on every endpoint that takes a body: nesting bombs, huge
/// arrays, dimension bombs, corrupt data, wrong types, unicode tricks in
/// names. Always a JSON 4xx, never a 5xx, and the server keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_on_every_endpoint_is_refused_cleanly() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| s.server.body_limit_bytes = 2_000_000)
        .await
        .unwrap();
    let (_, reg) = app
        .register(
            "Rose Leslie",
            "people/rose_leslie/face_recognition_img1.jpg",
        )
        .await;
    let id = reg["user_id"].as_i64().unwrap();
    let endpoints = [
        "/register/".to_string(),
        "/recognize/".to_string(),
        format!("/users/{id}/verify"),
        format!("/users/{id}/faces"),
        "/admin/keys".to_string(),
    ];
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let wide = format!("{{\"images\": [{}\"x\"]}}", "\"AAAA\",".repeat(200_000));
    let bomb = common::b64(&png_header(30_000, 30_000));
    let corrupt = common::b64(&[
        0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 2, 3,
    ]);
    let bodies: Vec<(&str, String)> = vec![
        ("nested", nested),
        ("wide", wide),
        (
            "bomb",
            format!("{{\"name\": \"x\", \"image\": \"{bomb}\"}}"),
        ),
        (
            "corrupt",
            format!("{{\"name\": \"x\", \"image\": \"{corrupt}\"}}"),
        ),
        (
            "not base64",
            "{\"name\": \"x\", \"image\": \"%%%not base64%%%\"}".into(),
        ),
        (
            "wrong types",
            "{\"name\": 42, \"image\": [1, 2, 3], \"scopes\": \"admin\"}".into(),
        ),
        ("null", "null".into()),
        (
            "NUL in name",
            "{\"name\": \"a\\u0000b\", \"image\": \"AAAA\"}".into(),
        ),
        ("empty", String::new()),
    ];
    for path in &endpoints {
        for (what, body) in &bodies {
            let res = app
                .client
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let (s, b) = common::read(res).await;
            assert!(
                (400..500).contains(&s) && b["error"].is_string(),
                "{path} {what}: {s} {b}"
            );
        }
    }
    // The dimension bomb is refused by its header, as a too-large image.
    let (s, b) = app.post_json("/recognize/", json!({ "image": bomb })).await;
    assert_error(s, &b, 413, "image_too_large");

    // Unicode tricks in names: bidi overrides, zero-width characters,
    // control characters are refused; real names in any script are kept.
    let photo = common::b64(&common::photo(
        "people/kit_harington/face_recognition_john1.jpeg",
    ));
    for name in [
        "evil\u{202E}gnp.exe",
        "a\u{200B}dmin",
        "tab\tname",
        "\u{0007}bell",
    ] {
        let (s, b) = app
            .post_json("/register/", json!({ "name": name, "image": photo }))
            .await;
        assert_error(s, &b, 422, "invalid_request");
    }
    let (s, b) = app
        .post_json(
            "/register/",
            json!({ "name": "Кит Харингтон 基特", "image": photo }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["name"], "Кит Харингтон 基特");

    // Query strings: negative, NaN, huge thresholds and pages.
    for q in ["threshold=-0.5", "threshold=NaN", "threshold=1e309"] {
        let (s, b) = app
            .post_json(
                &format!("/users/{id}/verify?{q}"),
                json!({ "image": photo }),
            )
            .await;
        assert_error(s, &b, 422, "invalid_request");
    }
    for q in ["limit=0", "limit=100000", "limit=-1", "after=abc"] {
        let (s, b) = app.get(&format!("/users/?{q}")).await;
        assert_error(s, &b, 422, "invalid_request");
    }
    for q in ["before=x", "user_id=1.5", "user_id=NaN", "since=notatime"] {
        let (s, b) = app.get(&format!("/admin/audit?{q}")).await;
        assert_error(s, &b, 422, "invalid_request");
    }
    // A whole number is an integer however it is written (JSON Schema's
    // reading, which the OpenAPI document promises).
    for q in ["user_id=1e3", "user_id=1000.0", "limit=5.0"] {
        let (s, b) = app.get(&format!("/admin/audit?{q}")).await;
        assert_eq!(s, 200, "{q}: {b}");
    }
    // Path traversal in every id position.
    for path in [
        "/users/..%2F..%2Fetc%2Fpasswd/verify",
        "/admin/users/%2e%2e/lockout",
        "/admin/keys/..%2f1",
    ] {
        let res = app
            .client
            .post(app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let (s, b) = common::read(res).await;
        assert!((400..500).contains(&s), "{path}: {s} {b}");
    }
    // Still healthy.
    let (s, _) = app.get("/health").await;
    assert_eq!(s, 200);
}
