//! `/ui`: the page for people (enrol, verify with the challenge, live
//! identify, administer), served by the binary itself. The three files in
//! `bins/facegate/ui/` are embedded at build time, so the page works on a
//! machine with no internet access and cannot drift from the binary's API.
//! The page holds no secret: it asks for an API key and calls the API with
//! it, so these routes are public, and the data behind them is not.
//!
//! The content-security policy allows the page's own script and styles
//! and nothing else: no inline script, no other origin, connections
//! (fetch, the stream's WebSocket) to this server only, the camera's
//! frames drawn from `blob:`/`mediastream:` sources.

use actix_web::http::header;
use actix_web::HttpResponse;

const INDEX: &str = include_str!("../../ui/index.html");
const SCRIPT: &str = include_str!("../../ui/app.js");
const STYLE: &str = include_str!("../../ui/app.css");

/// The page's policy (see the module's documentation).
pub const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn file(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, UI_CSP))
        // Rebuilt with the binary: a new build must not meet a stale copy.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((
            "Permissions-Policy",
            "camera=(self), microphone=(), geolocation=()",
        ))
        .body(body)
}

/// The page.
pub async fn index() -> HttpResponse {
    file(INDEX, "text/html; charset=utf-8")
}

/// Its script.
pub async fn script() -> HttpResponse {
    file(SCRIPT, "text/javascript; charset=utf-8")
}

/// Its styles.
pub async fn style() -> HttpResponse {
    file(STYLE, "text/css; charset=utf-8")
}
