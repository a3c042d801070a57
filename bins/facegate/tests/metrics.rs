//! `/metrics` after a known sequence of requests: every counter moved by
//! exactly what was done, the histograms have their observations, the
//! gauges describe the store, and the output is the Prometheus text format
//! as `promtool check metrics` reads it. Also who may scrape: `admin` on
//! the main listener, anyone on `server.metrics_address`.
//!
//! One test in this file: the recorder is one per process, so the deltas
//! are only exact when nothing else runs in it.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use facegate::settings::StoreKind;

/// One series: its name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// The samples of a text-format scrape, by series.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap();
                let mut labels = BTreeMap::new();
                // Label values here never hold `",`: split on it.
                for pair in rest.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap();
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        out.insert(Series { name, labels }, value);
    }
    out
}

/// Whether a sample named `name` with `labels` exists.
fn present(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> bool {
    samples.keys().any(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// A token with one hex digit of the part at `at` (0: the prefix, 1: the
/// secret) changed.
fn altered(token: &str, at: usize) -> String {
    let mut parts: Vec<String> = token.splitn(3, '_').map(str::to_string).collect();
    let part = &mut parts[at + 1];
    let first = if part.starts_with('0') { "1" } else { "0" };
    part.replace_range(0..1, first);
    parts.join("_")
}

/// The sum of the samples named `name` whose labels include `labels`.
fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .sum()
}

async fn scrape(client: &reqwest::Client, url: &str) -> String {
    let res = client.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_exactly_what_was_done() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.server.metrics_address = Some("127.0.0.1:0".into());
        // One failure delays the user (NIST's shortest delay, 30 s), so the
        // sequence below ends in a lockout.
        s.security.lockout_delay_after = 1;
    })
    .await
    .unwrap();
    let metrics_url = format!("{}/metrics", app.metrics_base.as_deref().unwrap());
    let anonymous = reqwest::Client::new();
    let before = parse(&scrape(&anonymous, &metrics_url).await);

    // Who may scrape the main listener: admin only.
    let res = anonymous.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let (_, recognize_token) = app.new_key("kiosk", &["recognize"]).await;
    let kiosk = common::client_with_key(&recognize_token);
    let res = kiosk.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let by_admin = scrape(&app.client, &app.url("/metrics")).await;
    assert!(by_admin.contains("facegate_build_info"), "{by_admin}");

    // Refused keys, one of each reason but `missing` (above) and
    // `malformed`: an unknown prefix, a wrong secret, a revoked key.
    let whoami = |client: reqwest::Client| {
        let url = app.url("/auth/whoami");
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    let unknown = common::client_with_key(&altered(&recognize_token, 0));
    assert_eq!(whoami(unknown).await, 401);
    let wrong = common::client_with_key(&altered(&recognize_token, 1));
    assert_eq!(whoami(wrong).await, 401);
    let (revoked_id, revoked_token) = app.new_key("door", &["recognize"]).await;
    let (status, body) = app.delete(&format!("/admin/keys/{revoked_id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(whoami(common::client_with_key(&revoked_token)).await, 401);
    // A path no route has, and a method nobody uses.
    let (status, _) = app.get("/no/such/route").await;
    assert_eq!(status, 404);
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    let res = app
        .client
        .request(brew, app.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);

    // One enrolment, one identification, a verification that passes, one
    // that fails (and delays the user), one refused during the delay.
    let (status, reg) = app
        .register("Paul Rudd", "people/paul_rudd/facenet_pytorch_1.jpg")
        .await;
    assert_eq!(status, 200, "{reg}");
    let id = reg["user_id"].as_i64().unwrap();
    let (status, rec) = app
        .recognize("people/paul_rudd/facenet_pytorch_1.png")
        .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["user_id"], id, "{rec}");
    let (status, v) = app
        .verify(id, "people/paul_rudd/facenet_pytorch_1.png")
        .await;
    assert_eq!(
        (status, &v["match"]),
        (200, &serde_json::json!(true)),
        "{v}"
    );
    let (status, v) = app
        .verify(id, "people/biden/face_recognition_biden.jpg")
        .await;
    assert_eq!(
        (status, &v["match"]),
        (200, &serde_json::json!(false)),
        "{v}"
    );
    let (status, v) = app
        .verify(id, "people/paul_rudd/facenet_pytorch_1.png")
        .await;
    assert_eq!(status, 429, "{v}");

    let text = scrape(&anonymous, &metrics_url).await;
    let after = parse(&text);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };

    // Decisions, by operation and outcome.
    let decisions = "facegate_decisions_total";
    assert_eq!(
        delta(decisions, &[("operation", "enrol"), ("outcome", "ok")]),
        1.0
    );
    assert_eq!(
        delta(
            decisions,
            &[("operation", "identify"), ("outcome", "match")]
        ),
        1.0
    );
    assert_eq!(
        delta(decisions, &[("operation", "verify"), ("outcome", "match")]),
        1.0
    );
    assert_eq!(
        delta(
            decisions,
            &[("operation", "verify"), ("outcome", "no_match")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            decisions,
            &[("operation", "verify"), ("outcome", "delayed")]
        ),
        1.0
    );
    assert_eq!(delta(decisions, &[]), 5.0, "{text}");
    assert_eq!(
        delta("facegate_lockouts_total", &[("state", "delayed")]),
        1.0
    );
    assert_eq!(delta("facegate_lockouts_total", &[]), 1.0);
    // The scrape without a key (the 403 was a valid key), and the three
    // refused keys.
    let refused = "facegate_authentication_failures_total";
    for reason in ["missing", "unknown", "wrong_secret", "revoked"] {
        assert_eq!(delta(refused, &[("reason", reason)]), 1.0, "{reason}");
    }
    assert_eq!(delta(refused, &[]), 4.0);

    // HTTP requests by route pattern and status (the metrics listener is
    // not counted: it is not the API).
    let http = "facegate_http_requests_total";
    let route = |r: &'static str, status: &'static str| [("route", r), ("status", status)];
    assert_eq!(delta(http, &route("/metrics", "401")), 1.0);
    assert_eq!(delta(http, &route("/metrics", "403")), 1.0);
    assert_eq!(delta(http, &route("/metrics", "200")), 1.0);
    assert_eq!(delta(http, &route("/admin/keys", "201")), 2.0);
    assert_eq!(delta(http, &route("/admin/keys/{id}", "200")), 1.0);
    assert_eq!(delta(http, &route("/auth/whoami", "401")), 3.0);
    assert_eq!(delta(http, &route("unmatched", "404")), 1.0);
    assert_eq!(
        delta(
            http,
            &[("method", "other"), ("route", "/health"), ("status", "405")]
        ),
        1.0
    );
    assert_eq!(delta(http, &route("/register/", "200")), 1.0);
    assert_eq!(delta(http, &route("/recognize/", "200")), 1.0);
    assert_eq!(delta(http, &route("/users/{id}/verify", "200")), 2.0);
    assert_eq!(delta(http, &route("/users/{id}/verify", "429")), 1.0);
    assert_eq!(delta(http, &[]), 16.0, "{text}");
    assert_eq!(
        delta(
            "facegate_http_request_duration_seconds_count",
            &route("/users/{id}/verify", "200")
        ),
        2.0
    );

    // Histograms: four photos went through the pipeline (the refused
    // verification compared nothing); four searches (the enrolment's
    // duplicate check, the identification, the two verifications).
    let stage = "facegate_pipeline_stage_duration_seconds_count";
    for s in ["decode", "detect", "embed"] {
        assert_eq!(
            delta(stage, &[("stage", s), ("backend", "dlib")]),
            4.0,
            "{s}"
        );
    }
    assert_eq!(
        delta(stage, &[("stage", "search"), ("backend", "dlib")]),
        4.0
    );
    assert!(
        delta(
            "facegate_pipeline_stage_duration_seconds_sum",
            &[("stage", "detect")]
        ) > 0.0
    );
    let distance = "facegate_decision_distance_count";
    let model = common::DLIB_MODEL.0;
    for outcome in ["match", "no_match"] {
        assert_eq!(
            delta(
                distance,
                &[
                    ("operation", "verify"),
                    ("outcome", outcome),
                    ("model", model)
                ]
            ),
            1.0,
            "{outcome}"
        );
    }
    assert_eq!(
        delta(distance, &[("operation", "identify"), ("outcome", "match")]),
        1.0
    );
    // A distance histogram's buckets are cumulative and end at +Inf.
    let inf = value(
        &after,
        "facegate_decision_distance_bucket",
        &[
            ("operation", "verify"),
            ("outcome", "match"),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(
        inf,
        value(
            &after,
            distance,
            &[("operation", "verify"), ("outcome", "match")]
        )
    );
    let store = "facegate_store_operation_duration_seconds_count";
    assert_eq!(
        delta(
            store,
            &[
                ("store", "sqlite"),
                ("operation", "create_unique_user"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert!(delta(store, &[("operation", "update_lockout")]) >= 5.0);
    // Real histograms, not summaries: buckets up to +Inf, as many as the
    // count (the alert rules read `_bucket`).
    for (name, labels) in [
        (
            "facegate_http_request_duration_seconds",
            vec![("route", "/users/{id}/verify"), ("status", "200")],
        ),
        (
            "facegate_pipeline_stage_duration_seconds",
            vec![("stage", "detect")],
        ),
        (
            "facegate_store_operation_duration_seconds",
            vec![("operation", "search")],
        ),
    ] {
        let mut inf = labels.clone();
        inf.push(("le", "+Inf"));
        let count = value(&after, &format!("{name}_count"), &labels);
        assert!(count > 0.0, "{name}");
        assert_eq!(
            value(&after, &format!("{name}_bucket"), &inf),
            count,
            "{name}"
        );
        let mut small = labels.clone();
        small.push(("le", "0.001"));
        assert!(
            present(&after, &format!("{name}_bucket"), &small),
            "{name}: no 1 ms bucket"
        );
    }

    // Gauges: the store and the workers as they are now.
    assert_eq!(
        value(&after, "facegate_templates", &[("model", model)]),
        1.0
    );
    assert_eq!(value(&after, "facegate_users", &[]), 1.0);
    assert_eq!(value(&after, "facegate_face_workers", &[]), 1.0);
    for gauge in ["facegate_face_workers_busy", "facegate_face_queue_depth"] {
        assert!(present(&after, gauge, &[]), "{gauge} missing");
        assert_eq!(value(&after, gauge, &[]), 0.0, "{gauge}");
    }
    assert_eq!(value(&after, "facegate_face_queue_capacity", &[]), 16.0);
    assert_eq!(
        value(
            &after,
            "facegate_build_info",
            &[
                ("backend", "dlib"),
                ("model", model),
                ("version", env!("CARGO_PKG_VERSION"))
            ]
        ),
        1.0
    );

    // No user id, name or key is a label value anywhere.
    for s in after.keys() {
        // (`le`, a histogram bucket's bound, is a number by design.)
        for (_, v) in s.labels.iter().filter(|(k, _)| *k != "le") {
            assert!(
                !v.contains("Paul") && !v.contains("kiosk") && !v.contains("door"),
                "{s:?}"
            );
            assert!(!v.contains("fg_"), "{s:?}");
            for token in [&recognize_token, &revoked_token, &app.token] {
                let prefix = token.split('_').nth(1).unwrap();
                assert!(!v.contains(prefix), "{s:?}");
            }
            assert_ne!(v, &id.to_string(), "{s:?}");
        }
    }

    // The text format, as Prometheus reads it (and its lint: help text,
    // units, counter suffixes).
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/setup.sh --test installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The metrics listener serves nothing else.
    let res = anonymous
        .get(format!("{}/users/", app.metrics_base.as_deref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.cleanup().await;
}
