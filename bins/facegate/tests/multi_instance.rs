//! Several FaceGate instances on one PostgreSQL (a fresh database per
//! test) and one Redis (a throwaway `redis-server` per test), as behind a
//! load balancer: what one instance writes the other sees at once, the
//! lockout, keys, liveness tokens and stream tickets hold across them, a
//! per-key limit is one limit for both, Redis going away refuses limited
//! requests (fail closed) without taking the probes down, and SIGTERM to
//! one instance loses no acknowledged enrolment while the other serves.
//! The SIGTERM case runs the real binary; the others run two in-process
//! servers, each on its own port.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestApp;
use face_store::testing::redis::RedisServer;
use face_store::testing::{pg_admin_url, TestDatabase};
use facegate::settings::{RateStoreKind, Settings};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Two instances on one database and one Redis.
struct Pair {
    a: TestApp,
    b: TestApp,
    redis: RedisServer,
    db: TestDatabase,
}

impl Pair {
    async fn start(tweak: impl Fn(&mut Settings)) -> Option<Pair> {
        let admin = pg_admin_url()?;
        let redis = RedisServer::start()?;
        let db = TestDatabase::create(&admin).await;
        let url = redis.url();
        let settings = |s: &mut Settings| {
            common::use_fast_pipeline(s);
            s.security.rate_store = RateStoreKind::Redis;
            s.security.redis_url = Some(url.clone());
            tweak(s);
        };
        let a = common::spawn_on_postgres(&db.url, &settings).await;
        let b = common::spawn_on_postgres(&db.url, &settings).await;
        Some(Pair { a, b, redis, db })
    }

    async fn cleanup(self) {
        drop((self.a, self.b, self.redis));
        self.db.drop_database().await;
    }
}

fn lfw(person: &str, n: usize) -> Vec<u8> {
    let path = common::shared()
        .join("datasets/lfw")
        .join(person)
        .join(format!("{person}_{n:04}.jpg"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.post_json(path, body).await
}

/// `app`'s request with another instance's key (keys live in the store).
async fn post_with(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    body: Value,
) -> (u16, Value) {
    common::read(client.post(app.url(path)).json(&body).send().await.unwrap()).await
}

/// Frames of d12 that turn as `steps` ask (`tests/challenge.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_instance_writes_the_other_sees_at_once() {
    let Some(p) = Pair::start(|_| {}).await else {
        return;
    };
    let (a, b) = (&p.a, &p.b);

    // Enrol through A, identify through B at once; delete through B,
    // identify through A: gone.
    let (status, rose) = a.register("Rose Leslie", common::ROSE).await;
    assert_eq!(status, 200, "{rose}");
    let (status, found) = b.recognize(common::ROSE_2).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        (&found["match"], &found["user_id"]),
        (&json!(true), &rose["user_id"]),
        "{found}"
    );
    let (status, _) = b.delete(&format!("/users/{}", rose["user_id"])).await;
    assert_eq!(status, 200);
    let (status, gone) = a.recognize(common::ROSE_2).await;
    assert_eq!((status, &gone["match"]), (200, &json!(false)), "{gone}");

    // Five failed verifications of one user, alternating: the sixth is
    // delayed on both.
    let (status, abdullah) = post(
        a,
        "/register/",
        json!({"name": "Abdullah Gul", "image": common::b64(&lfw("Abdullah_Gul", 1))}),
    )
    .await;
    assert_eq!(status, 200, "{abdullah}");
    let verify = format!("/users/{}/verify", abdullah["user_id"]);
    let stranger = json!({"image": common::b64(&lfw("Aaron_Eckhart", 1))});
    for i in 0..5 {
        let app = if i % 2 == 0 { a } else { b };
        let (status, v) = post(app, &verify, stranger.clone()).await;
        assert_eq!(
            (status, &v["match"]),
            (200, &json!(false)),
            "attempt {i}: {v}"
        );
    }
    for app in [a, b] {
        let (status, v) = post(app, &verify, stranger.clone()).await;
        assert_eq!(
            (status, &v["error"]),
            (429, &json!("verification_delayed")),
            "{v}"
        );
    }

    // A key revoked through A is refused by B at once.
    let (key_id, token) = a.new_key("kiosk", &["recognize"]).await;
    let kiosk = common::client_with_key(&token);
    let whoami = |app: &TestApp| kiosk.get(app.url("/auth/whoami")).send();
    assert_eq!(whoami(b).await.unwrap().status(), 200);
    let (status, _) = a.delete(&format!("/admin/keys/{key_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(whoami(b).await.unwrap().status(), 401);

    // A stream ticket from A opens the stream on B, once.
    let (status, t) = post(a, "/stream/tickets", json!({})).await;
    assert_eq!(status, 201, "{t}");
    let query = format!("?ticket={}", t["ticket"].as_str().unwrap());
    let url = || common::ws::ws_url(b, &query).into_client_request().unwrap();
    assert!(common::ws::open(url()).await.is_ok(), "A's ticket on B");
    assert_eq!(common::ws::open(url()).await.err(), Some(401), "used");

    // A liveness token issued through A is redeemed once through B and
    // refused on a second use through A.
    let d12 = common::clip("d12.mjpeg");
    let man = common::enrol_d12(a, &d12).await;
    let body = json!({"purpose": "verify", "user_id": man});
    let (sid, run) = loop {
        let (status, s) = post(a, "/liveness/sessions", body.clone()).await;
        assert_eq!(status, 201, "{s}");
        if let Some(run) = common::d12_run(&common::steps_of(&s)) {
            break (s["id"].as_str().unwrap().to_string(), run);
        }
    };
    let frames = &d12[run];
    // Waits as long as filming the frames at 25 a second takes.
    tokio::time::sleep(Duration::from_millis(40 * frames.len() as u64)).await;
    let res = a
        .client
        .post(a.url(&format!("/liveness/sessions/{sid}/frames")))
        .multipart(common::frames_form(frames))
        .send()
        .await
        .unwrap();
    let (status, result) = common::read(res).await;
    assert_eq!((status, &result["passed"]), (200, &json!(true)), "{result}");
    let proof = json!({"image": common::b64(&d12[0]),
                       "liveness_token": result["token"]});
    let verify = format!("/users/{man}/verify");
    let (status, v) = post_with(&a.client, b, &verify, proof.clone()).await;
    assert_eq!((status, &v["match"]), (200, &json!(true)), "{v}");
    let (status, v) = post(a, &verify, proof).await;
    assert_eq!(
        (status, &v["error"]),
        (403, &json!("liveness_token_refused")),
        "{v}"
    );
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_key_limit_is_one_limit_across_instances() {
    // N = 20 a second per key, a burst of 5; the address limit off.
    const N: f64 = 20.0;
    const BURST: f64 = 5.0;
    let Some(p) = Pair::start(|s| {
        s.security.rate_per_key_per_minute = 1200;
        s.security.rate_burst = 5;
        s.security.rate_per_ip_per_minute = 0;
    })
    .await
    else {
        return;
    };
    // One key, at least 3N requests a second for 10 s, alternating A and
    // B, each sent on its own schedule (not waiting for the last answer).
    let (_, token) = p.a.new_key("load", &["recognize"]).await;
    let client = common::client_with_key(&token);
    let urls = [p.a.url("/auth/whoami"), p.b.url("/auth/whoami")];
    let interval = Duration::from_secs_f64(1.0 / (3.5 * N));
    let mut tick = tokio::time::interval(interval);
    let started = Instant::now();
    let mut sent = Vec::new();
    let mut i = 0usize;
    while started.elapsed() < Duration::from_secs(10) {
        tick.tick().await;
        let (client, url) = (client.clone(), urls[i % 2].clone());
        sent.push(tokio::spawn(async move {
            client.get(url).send().await.unwrap().status().as_u16()
        }));
        i += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for s in sent {
        *by_status.entry(s.await.unwrap()).or_default() += 1;
    }
    let accepted = by_status.get(&200).copied().unwrap_or(0) as f64;
    let rate = i as f64 / secs;
    println!("sent {i} in {secs:.2} s ({rate:.0}/s): {by_status:?}");
    assert!(rate >= 3.0 * N, "the client sent only {rate:.0} a second");
    assert_eq!(
        by_status.keys().copied().collect::<Vec<_>>(),
        vec![200, 429],
        "{by_status:?}"
    );
    let (low, high) = (0.9 * 10.0 * N, 1.1 * 10.0 * N + BURST + 1.0);
    assert!(
        (low..=high).contains(&accepted),
        "{accepted} accepted, expected {low}..={high} (a limit per process would accept about {})",
        2.0 * 10.0 * N
    );
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_limited_routes_refuse_and_the_probes_stay_up() {
    let Some(mut p) = Pair::start(|_| {}).await else {
        return;
    };
    for app in [&p.a, &p.b] {
        assert_eq!(app.get("/users/").await.0, 200);
    }
    p.redis.stop();
    for app in [&p.a, &p.b] {
        let res = app.client.get(app.url("/users/")).send().await.unwrap();
        let retry_after = res.headers().get("retry-after").cloned();
        let (status, body) = common::read(res).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "rate_limits_unavailable", "{body}");
        assert!(retry_after.is_some(), "Retry-After");
        for probe in ["/livez", "/readyz", "/health"] {
            let status = app
                .client
                .get(app.url(probe))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200, "{probe}");
        }
    }
    p.redis.resume();
    let back = Instant::now();
    for app in [&p.a, &p.b] {
        loop {
            if app.get("/users/").await.0 == 200 {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(10),
                "not back within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("both instances back {:?} after Redis", back.elapsed());
    p.cleanup().await;
}

/// The real binary on the fast pipeline, on `db` and `redis`.
fn instance(db: &str, redis: &str, data: &std::path::Path) -> Command {
    let mut cmd = common::facegate_binary(env!("CARGO_BIN_EXE_facegate"), data);
    let ort = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::workspace().join("runtime/libonnxruntime.so"));
    cmd.env("FACEGATE_ENV", "fast")
        .env("FACEGATE__FACE__BACKEND", "onnx")
        .env(
            "FACEGATE__FACE__MODELS_DIR",
            common::shared().join("models/onnx"),
        )
        .env("FACEGATE__FACE__ONNX__RUNTIME__LIBRARY", ort)
        .env("FACEGATE__FACE__WORKERS", "1")
        .env("FACEGATE__LOG__LEVEL", "warn")
        .env("FACEGATE__THRESHOLDS__EXPECTED_GALLERY_SIZE", "100")
        .env("FACEGATE__STORE__KIND", "postgres")
        .env("FACEGATE__STORE__POSTGRES_URL", db)
        .env("FACEGATE__SECURITY__RATE_STORE", "redis")
        .env("FACEGATE__SECURITY__REDIS_URL", redis)
        .env("FACEGATE__SECURITY__RATE_PER_IP_PER_MINUTE", "0")
        .env("FACEGATE__SECURITY__RATE_PER_KEY_PER_MINUTE", "0");
    cmd
}

/// A server process, killed if the test ends without stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(db: &str, redis: &str, data: &std::path::Path, port: u16) -> Server {
    Server(
        instance(db, redis, data)
            .env("FACEGATE__SERVER__PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

async fn healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while reqwest::get(format!("{base}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "{base} did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_one_instance_loses_nothing_and_the_other_serves_on() {
    let Some(admin) = pg_admin_url() else { return };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let db = TestDatabase::create(&admin).await;
    let data = tempfile::tempdir().unwrap();
    let token = common::create_key(
        instance(&db.url, &redis.url(), data.path()),
        "load balancer test",
        "admin",
    );
    let (port_a, port_b) = (common::free_port(), common::free_port());
    let (base_a, base_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    let mut a = serve(&db.url, &redis.url(), data.path(), port_a);
    let b = serve(&db.url, &redis.url(), data.path(), port_b);
    healthy(&base_a).await;
    healthy(&base_b).await;

    // A new connection per request, as a load balancer's health-checked
    // pool would make after A left: a request A never accepted fails to
    // connect, and any other failure is a request A dropped.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let people: Vec<String> = {
        let mut dirs: Vec<String> = std::fs::read_dir(common::shared().join("datasets/lfw"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        dirs.sort();
        dirs.into_iter().step_by(37).take(120).collect()
    };
    let enrol = |base: String, person: String| {
        let client = client.clone();
        async move {
            let body =
                json!({"name": person.replace('_', " "), "image": common::b64(&lfw(&person, 1))});
            let res = client
                .post(format!("{base}/register/"))
                .json(&body)
                .send()
                .await;
            (
                person,
                res.map(|r| r.status().as_u16()).map_err(|e| e.is_connect()),
            )
        }
    };
    let mut acknowledged = Vec::new();
    let mut dropped_by_a = Vec::new();
    let mut a_gone = false;
    let mut term_sent = None;
    let mut in_flight_at_term = None;
    for (round, pair) in people.chunks(2).enumerate() {
        // One request to each instance at a time, both in flight together.
        let to_a = (!a_gone).then(|| tokio::spawn(enrol(base_a.clone(), pair[0].clone())));
        let to_b = pair
            .get(1)
            .map(|p| tokio::spawn(enrol(base_b.clone(), p.clone())));
        if round == 20 {
            // SIGTERM while A's request is in flight.
            tokio::time::sleep(Duration::from_millis(30)).await;
            let status = Command::new("kill")
                .args(["-TERM", &a.0.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            term_sent = Some(Instant::now());
        }
        for (from_a, task) in [(true, to_a), (false, to_b)] {
            let Some(task) = task else { continue };
            let (person, outcome) = task.await.unwrap();
            if from_a && round == 20 {
                // The request in flight when SIGTERM came was finished.
                in_flight_at_term = Some(outcome);
            }
            match outcome {
                Ok(200) => acknowledged.push(person),
                // A photo the pipeline refuses (400) or a look-alike
                // already enrolled (409): answered, not acknowledged.
                Ok(status) if status < 500 => {}
                Ok(status) => panic!(
                    "{} answered {status} for {person}",
                    if from_a { "A" } else { "B" }
                ),
                Err(true) if from_a && term_sent.is_some() => a_gone = true,
                Err(connect) => {
                    assert!(
                        from_a,
                        "B failed a request for {person} (connect error: {connect})"
                    );
                    dropped_by_a.push(person);
                }
            }
        }
    }
    assert!(term_sent.is_some(), "the loop ended before SIGTERM");
    assert!(a_gone, "A still accepted connections after SIGTERM");
    assert_eq!(
        in_flight_at_term,
        Some(Ok(200)),
        "A's request in flight at SIGTERM"
    );
    assert!(
        dropped_by_a.is_empty(),
        "A dropped in-flight requests: {dropped_by_a:?}"
    );
    let exit = a.0.wait().unwrap();
    assert!(exit.success(), "A's exit after SIGTERM: {exit}");
    println!(
        "{} enrolments acknowledged; A exited {:?} after SIGTERM",
        acknowledged.len(),
        term_sent.unwrap().elapsed()
    );

    // Every acknowledged enrolment is in the database.
    let users: Value = client
        .get(format!("{base_b}/users/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: std::collections::HashSet<String> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    for person in &acknowledged {
        assert!(
            names.contains(&person.replace('_', " ")),
            "{person} was acknowledged but is not stored"
        );
    }
    drop(b);
    drop(redis);
    db.drop_database().await;
}
