//! Logging: `tracing-subscriber` in pretty or JSON form on stderr, filtered
//! by the configured level or `RUST_LOG`. Handlers and the service skip image and
//! embedding arguments in their spans, so biometric data never gets here.

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber; a second call is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // stderr: standard output is for what commands print (the `keys`
    // command's token), never for logs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The root span of each request, like tracing-actix-web's default but with
/// FaceGate's client address (`crate::client`: the peer, or the
/// `X-Forwarded-For` client behind a trusted proxy) instead of whatever
/// `Forwarded` header a client sends.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(req: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let client = req
            .app_data::<actix_web::web::Data<crate::state::AppState>>()
            .and_then(|s| crate::client::of(req, &s.guard.proxies))
            .map(|c| c.to_string())
            .unwrap_or_default();
        let route = req.match_pattern().unwrap_or_else(|| "default".into());
        tracing::info_span!(
            "HTTP request",
            http.method = %req.method(),
            http.route = %route,
            http.client_ip = %client,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
