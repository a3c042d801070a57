//! Who the client is, over HTTP against the real server: `X-Forwarded-For`
//! names the client only behind a trusted proxy, IPv6 clients are limited
//! by their /64, the audit trail records the same address the limits use,
//! and refused authentications are audited as one row per client with a
//! count.
#![allow(clippy::unwrap_used)]

mod common;

use facegate::settings::StoreKind;
use serde_json::Value;

/// `GET /stats/` as `client` claims to be; the status.
async fn stats_as(app: &common::TestApp, client: Option<&str>) -> u16 {
    let mut req = app.client.get(app.url("/stats/"));
    if let Some(c) = client {
        req = req.header("x-forwarded-for", c);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Requests until the first 429; how many were let through (at most 10).
async fn allowed(app: &common::TestApp, client: Option<&str>) -> usize {
    for n in 0..10 {
        if stats_as(app, client).await == 429 {
            return n;
        }
    }
    10
}

fn limited(trusted: &[&str]) -> impl FnOnce(&mut facegate::settings::Settings) {
    let trusted: Vec<String> = trusted.iter().map(|t| t.to_string()).collect();
    move |s| {
        // Three requests at once per client, then one a minute. The burst
        // setting is shared with the per-key limit: switch that one off, or
        // the admin key's own requests, sent back to back, hit it.
        s.security.rate_per_ip_per_minute = 1;
        s.security.rate_burst = 2;
        s.security.rate_per_key_per_minute = 0;
        s.server.trusted_proxies = trusted;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_clients_are_limited_only_behind_a_trusted_proxy() {
    // The test client connects from 127.0.0.1: a trusted proxy here.
    let app = common::spawn_with(StoreKind::Sqlite, limited(&["127.0.0.0/8"]))
        .await
        .unwrap();
    assert_eq!(allowed(&app, Some("198.51.100.1")).await, 3);
    assert_eq!(
        allowed(&app, Some("198.51.100.2")).await,
        3,
        "another client"
    );
    // The right-most hop that is not a trusted proxy is the client.
    assert_eq!(stats_as(&app, Some("198.51.100.2, 127.0.0.5")).await, 429);
    assert_eq!(
        stats_as(&app, Some("198.51.100.2, 198.51.100.3")).await,
        200
    );
    // IPv6: one /64 is one client; the next /64 is another.
    assert_eq!(allowed(&app, Some("2001:db8:1:2::1")).await, 3);
    assert_eq!(
        stats_as(&app, Some("2001:db8:1:2:ffff:ffff:ffff:ffff")).await,
        429
    );
    assert_eq!(allowed(&app, Some("2001:db8:1:3::1")).await, 3);
    // The audit trail records the same client.
    let before = app.get("/admin/audit?limit=1").await.1["events"][0]["id"].clone();
    let res = app
        .client
        .post(app.url("/admin/keys"))
        .header("x-forwarded-for", "203.0.113.77")
        .json(&serde_json::json!({ "name": "via proxy", "scopes": ["recognize"] }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_eq!(status, 201, "{}", res.text().await.unwrap());
    let (_, audit) = app.get("/admin/audit?limit=5").await;
    let created = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "key_create" && e["id"] != before)
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(created["client"], "203.0.113.77", "{created}");
    app.cleanup().await;

    // Without trusted proxies the header is the client's word: ignored.
    let app = common::spawn_with(StoreKind::Sqlite, limited(&[]))
        .await
        .unwrap();
    assert_eq!(allowed(&app, Some("198.51.100.1")).await, 3);
    assert_eq!(stats_as(&app, Some("198.51.100.2")).await, 429, "same peer");
    assert_eq!(stats_as(&app, None).await, 429);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_authentications_are_audited_with_counts() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
        s.security.auth_failure_audit_secs = 1;
    })
    .await
    .unwrap();
    let guess = common::client_with_key(&format!("fg_{}_{}", "0".repeat(12), "1".repeat(64)));
    for (client, n) in [
        ("198.51.100.10", 5),
        ("2001:db8:9:9::1", 2),
        ("2001:db8:9:9::2", 1),
    ] {
        for _ in 0..n {
            let res = guess
                .get(app.url("/users/"))
                .header("x-forwarded-for", client)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 401);
        }
    }
    // One row per client per window, after the window closes.
    let mut rows: Vec<Value> = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let (_, audit) = app.get("/admin/audit?limit=100").await;
        rows = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "authenticate")
            .cloned()
            .collect();
        if rows.len() >= 2 {
            break;
        }
    }
    let detail = |client: &str| {
        rows.iter()
            .filter(|e| e["client"] == client)
            .map(|e| e["detail"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        detail("198.51.100.10"),
        ["5 refused authentication(s) (401) in 1 s"],
        "{rows:?}"
    );
    assert_eq!(
        detail("2001:db8:9:9::/64"),
        ["3 refused authentication(s) (401) in 1 s"],
        "{rows:?}"
    );
    assert!(rows
        .iter()
        .all(|e| e["outcome"] == "refused" && e["key_id"].is_null()));
    app.cleanup().await;
}
