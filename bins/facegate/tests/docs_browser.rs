//! `/docs` (Swagger UI) and `/redoc` (ReDoc) really render: headless
//! Chromium loads each page from the test server with every other network
//! address routed to a dead proxy, runs its JavaScript, and the rendered
//! DOM must show the API's operations. Needs `chromium` (scripts/setup.sh
//! --test installs it); skipped with a loud message elsewhere, failed under CI.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use facegate::settings::StoreKind;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn rendered_dom(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Anything not on this machine goes to a closed port: offline.
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_and_redoc_render_in_headless_chromium_offline() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required under CI (scripts/setup.sh --test)"
        );
        eprintln!(
            "\n*** SKIPPING browser test: no chromium (scripts/setup.sh --test installs it) ***\n"
        );
        return;
    };
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let (docs_url, redoc_url) = (app.url("/docs"), app.url("/redoc"));
    let (docs, redoc) = tokio::task::spawn_blocking(move || {
        (
            rendered_dom(browser, &docs_url),
            rendered_dom(browser, &redoc_url),
        )
    })
    .await
    .unwrap();
    // Swagger UI turns each operation into an "opblock" with its path.
    assert!(
        docs.contains("opblock"),
        "Swagger UI did not render: {}",
        &docs[..docs.len().min(2000)]
    );
    assert!(
        docs.contains("/users/{id}/verify"),
        "operations missing from Swagger UI"
    );
    // ReDoc renders the title and the operations' summaries.
    assert!(
        redoc.contains("FaceGate"),
        "ReDoc did not render: {}",
        &redoc[..redoc.len().min(2000)]
    );
    assert!(
        redoc.contains("/recognize/"),
        "operations missing from ReDoc"
    );
}
