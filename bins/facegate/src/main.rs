//! The `facegate` binary: loads settings, starts logging, runs the server.

use std::path::PathBuf;
use std::process::ExitCode;

use facegate::settings::Settings;
use facegate::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    let config_dir = std::env::var_os("FACEGATE_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"));
    let settings = match Settings::load(&config_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("facegate: {e}");
            return ExitCode::from(2);
        }
    };
    facegate::telemetry::init(&settings.log);
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("startup failed: {e}");
            eprintln!("facegate: startup failed: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(port = app.port(), "listening");
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facegate: server error: {e}");
            ExitCode::FAILURE
        }
    }
}
