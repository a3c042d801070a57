//! The binary's settings and admin command, as an operator meets them: an
//! unknown setting, in a file or the environment, stops startup naming it;
//! `facegate keys create` needs no face models and prints only the token on
//! stdout, so `KEY=$(facegate keys create ...)` works.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

fn facegate(config: &std::path::Path, data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegate"));
    cmd.current_dir(common::workspace())
        .env("FACEGATE_CONFIG_DIR", config)
        .env("FACEGATE__STORE__DATA_DIR", data)
        .env("FACEGATE__SERVER__PORT", "0")
        .env_remove("FACEGATE_ENV");
    cmd
}

#[test]
fn an_unknown_setting_stops_startup_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let config = common::workspace().join("config");
    // Before, both typos were ignored and the server started on defaults.
    let out = facegate(&config, data.path())
        .env("FACEGATE__SERVER__PROT", "9000")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("prot"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(config.join("default.toml"), dir.path().join("default.toml")).unwrap();
    std::fs::write(dir.path().join("typo.toml"), "[face]\nworkerz = 2\n").unwrap();
    let out = facegate(dir.path(), data.path())
        .env("FACEGATE_ENV", "typo")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("workerz"), "{stderr}");
}

#[test]
fn keys_create_needs_no_models_and_prints_only_the_token() {
    let data = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = facegate(&common::workspace().join("config"), data.path())
        .env("FACEGATE__FACE__MODELS_DIR", empty.path())
        .env("FACEGATE__LOG__LEVEL", "debug")
        .args([
            "keys",
            "create",
            "--name",
            "first admin",
            "--scopes",
            "admin",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the token on stdout: {stdout:?}");
    let token = lines[0];
    assert!(token.starts_with("fg_") && token.len() == 80, "{token}");
    // The key works: listing it finds its prefix.
    let out = facegate(&common::workspace().join("config"), data.path())
        .env("FACEGATE__FACE__MODELS_DIR", empty.path())
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains(&token[3..15]), "{listed}");
}

/// The fast pipeline of `config/fast.toml` (YuNet-n + MobileFaceNet from
/// the shared models) starts on its own calibration: a service built from
/// it, as `facegate reenrolment` builds one, loads the models and finds the
/// calibration file measured with exactly that detector setting (without
/// it, startup refuses an uncalibrated model).
#[test]
fn the_fast_configuration_starts_on_its_own_calibration() {
    let data = tempfile::tempdir().unwrap();
    let out = facegate(&common::workspace().join("config"), data.path())
        .env("FACEGATE_ENV", "fast")
        .env(
            "FACEGATE__FACE__MODELS_DIR",
            common::shared().join("models/onnx"),
        )
        .arg("reenrolment")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("mobilefacenet_128d_85cdeb73"),
        "not the fast pipeline's model: {stderr}"
    );
}

/// Shared limits need Redis's address, from the environment: without it
/// startup refuses, naming the variable; a URL that is not one is refused
/// too (an unreachable Redis is not: the server starts and fails closed).
#[test]
fn shared_rate_limits_need_a_redis_url() {
    let data = tempfile::tempdir().unwrap();
    let config = common::workspace().join("config");
    let out = facegate(&config, data.path())
        .env("FACEGATE__SECURITY__RATE_STORE", "redis")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FACEGATE__SECURITY__REDIS_URL"), "{stderr}");
    let out = facegate(&config, data.path())
        .env("FACEGATE__SECURITY__RATE_STORE", "redis")
        .env("FACEGATE__SECURITY__REDIS_URL", "http://not-redis")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("security.redis_url"), "{stderr}");
}

/// The list settings can be given in the environment, comma separated
/// (before, any value was refused: "expected a sequence"), and a bad item
/// is still refused by name.
#[test]
fn list_settings_come_from_the_environment_comma_separated() {
    let data = tempfile::tempdir().unwrap();
    let config = common::workspace().join("config");
    let out = facegate(&config, data.path())
        .args(["keys", "list"])
        .env(
            "FACEGATE__SERVER__TRUSTED_PROXIES",
            "10.0.0.10/32,10.0.1.0/24",
        )
        .env(
            "FACEGATE__SECURITY__CORS_ORIGINS",
            "https://a.example.com,https://b.example.com",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = facegate(&config, data.path())
        .args(["keys", "list"])
        .env(
            "FACEGATE__SERVER__TRUSTED_PROXIES",
            "10.0.0.10/32,not-a-network",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("trusted_proxies"), "{stderr}");
}
