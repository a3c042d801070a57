//! The `facegate` binary: loads settings, starts logging, runs the server.
//!
//! ```text
//! facegate                 run the server
//! facegate reenrolment     list users with no template of the active model
//! facegate keys create --name NAME --scopes admin[,enrol,recognize]
//!                          make an API key; prints the token (shown once)
//! facegate keys list       list keys (id, name, prefix, scopes, revoked)
//! facegate keys revoke ID  revoke a key
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
        Some("keys") => return keys(settings, std::env::args().skip(2).collect()).await,
        Some(other) => {
            eprintln!("facegate: unknown command {other:?} (commands: serve, reenrolment, keys)");
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

/// The service for an admin command: the server's settings, one face
/// worker (the active model's id and dimension come from its file).
async fn command_service(mut settings: Settings) -> Result<face_service::FaceService, ExitCode> {
    settings.face.workers = 1;
    facegate::startup::build_service(&settings)
        .await
        .map_err(|e| {
            eprintln!("facegate: {e}");
            ExitCode::from(1)
        })
}

/// Prints every user without a template of the active model, one per line
/// (`id<TAB>name<TAB>templates of any model`), then a count. Loads one
/// pipeline only: the active model's id and dimension come from its file.
async fn reenrolment(settings: Settings) -> ExitCode {
    let service = match command_service(settings).await {
        Ok(s) => s,
        Err(code) => return code,
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

const KEYS_USAGE: &str =
    "usage: facegate keys create --name NAME --scopes admin[,enrol,recognize] \
| facegate keys list | facegate keys revoke ID";

/// `facegate keys ...`: the way to make the first (admin) key, and to
/// manage keys without the HTTP API. Acts on the configured store directly;
/// logs go to stderr, so `KEY=$(facegate keys create ...)` captures only
/// the token.
async fn keys(settings: Settings, args: Vec<String>) -> ExitCode {
    // The store alone: keys need no face models, so this works before any
    // model is installed, and prints nothing but the token on stdout.
    let store = match facegate::startup::open_store(&settings).await {
        Ok((store, _)) => store,
        Err(e) => {
            eprintln!("facegate: {e}");
            return ExitCode::from(1);
        }
    };
    let keys = face_service::keys::Keys::new(
        std::sync::Arc::clone(&store),
        face_service::audit::AuditTrail::new(store),
    );
    // Audited as coming from the local command line.
    let caller = face_service::Caller::command_line();
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("facegate: {e}");
        ExitCode::from(1)
    };
    match args.first().map(String::as_str) {
        Some("create") => {
            let (mut name, mut scopes) = (None, None);
            let mut it = args.iter().skip(1);
            while let Some(flag) = it.next() {
                match flag.as_str() {
                    "--name" => name = it.next().cloned(),
                    "--scopes" => scopes = it.next().cloned(),
                    _ => {
                        eprintln!("{KEYS_USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            let (Some(name), Some(scopes)) = (name, scopes) else {
                eprintln!("{KEYS_USAGE}");
                return ExitCode::from(2);
            };
            let scopes = match scopes
                .split(',')
                .map(face_service::Scope::parse)
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            match keys.create(&caller, &name, &scopes).await {
                Ok(issued) => {
                    eprintln!(
                        "created API key {} ({}) with scopes {}; the token below is shown once:",
                        issued.key.id,
                        issued.key.name,
                        issued.key.scopes.join(",")
                    );
                    println!("{}", issued.token);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Some("list") => match keys.list().await {
            Ok(keys) => {
                for k in keys {
                    println!(
                        "{}\t{}\tfg_{}_...\t{}\t{}\t{}",
                        k.id,
                        k.name,
                        k.prefix,
                        k.scopes.join(","),
                        k.created_at.to_rfc3339(),
                        k.revoked_at
                            .map(|t| format!("revoked {}", t.to_rfc3339()))
                            .unwrap_or_else(|| "active".into())
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Some("revoke") => {
            let Some(id) = args.get(1).and_then(|a| a.parse::<i64>().ok()) else {
                eprintln!("{KEYS_USAGE}");
                return ExitCode::from(2);
            };
            match keys.revoke(&caller, id).await {
                Ok(()) => {
                    eprintln!("revoked API key {id}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        _ => {
            eprintln!("{KEYS_USAGE}");
            ExitCode::from(2)
        }
    }
}
