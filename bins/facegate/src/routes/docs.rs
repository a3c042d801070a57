//! `/openapi.json`, `/docs` (Swagger UI) and `/redoc` (ReDoc), all served by
//! the binary itself: the UI bundles are embedded at build time, so the docs
//! render on a machine with no internet access.

use actix_web::http::header::{self, ContentType};
use actix_web::{web, HttpResponse};

use super::AppState;

const SWAGGER_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui-bundle.js"));
const SWAGGER_CSS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui.css"));
const REDOC_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/redoc.standalone.js"));

const MISSING: &str = "<!doctype html><title>FaceGate API docs</title><p>The API docs \
    assets were not installed when this binary was built. Run \
    <code>scripts/fetch-docs-assets.sh</code> and rebuild. The OpenAPI document is at \
    <a href=\"/openapi.json\">/openapi.json</a>.";

const DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; \
    frame-ancestors 'none'";

fn page(body: &'static str) -> HttpResponse {
    let html = if cfg!(facegate_docs_assets) {
        body
    } else {
        MISSING
    };
    HttpResponse::Ok()
        .content_type(ContentType::html())
        // The API's own default CSP forbids everything; the docs pages need
        // their scripts and styles (from this server only; Swagger UI's
        // start-up script is inline, ReDoc uses blob workers and inline
        // styles).
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
        .body(html)
}

/// The OpenAPI document (built at startup by `crate::openapi`).
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(state.openapi.clone())
}

/// Swagger UI.
pub async fn swagger() -> HttpResponse {
    page(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FaceGate API — Swagger UI</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"##,
    )
}

/// ReDoc.
pub async fn redoc() -> HttpResponse {
    page(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FaceGate API — ReDoc</title></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/assets/redoc.standalone.js"></script>
</body></html>"##,
    )
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(bytes)
}

/// Swagger UI's script.
pub async fn swagger_js() -> HttpResponse {
    asset(SWAGGER_JS, "application/javascript")
}

/// Swagger UI's styles.
pub async fn swagger_css() -> HttpResponse {
    asset(SWAGGER_CSS, "text/css")
}

/// ReDoc's script.
pub async fn redoc_js() -> HttpResponse {
    asset(REDOC_JS, "application/javascript")
}
