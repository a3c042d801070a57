//! The `facegate` binary: loads settings, starts logging, runs the server.
//!
//! ```text
//! facegate                 run the server
//! facegate reenrolment     list users with no template of the active model
//! ```

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
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {}
        Some("reenrolment") => return reenrolment(settings).await,
        Some(other) => {
            eprintln!("facegate: unknown command {other:?} (commands: serve, reenrolment)");
            return ExitCode::from(2);
        }
    }
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

/// Prints every user without a template of the active model, one per line
/// (`id<TAB>name<TAB>templates of any model`), then a count. Loads one
/// pipeline only: the active model's id and dimension come from its file.
async fn reenrolment(mut settings: Settings) -> ExitCode {
    settings.face.workers = 1;
    let service = match facegate::startup::build_service(&settings).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("facegate: {e}");
            return ExitCode::from(1);
        }
    };
    let mut after = None;
    let mut total = 0usize;
    loop {
        let page = match service.users_without_active_model(after, 1000).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("facegate: {e}");
                return ExitCode::from(1);
            }
        };
        for u in &page {
            println!("{}\t{}\t{}", u.id, u.name, u.template_count);
        }
        total += page.len();
        match page.last() {
            Some(last) if page.len() == 1000 => after = Some(last.id),
            _ => break,
        }
    }
    eprintln!(
        "{total} users have no template of the active model {}; add one with POST /users/{{id}}/faces",
        service.model().id
    );
    ExitCode::SUCCESS
}
