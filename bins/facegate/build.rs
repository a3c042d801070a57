//! Embeds the Swagger UI and ReDoc bundles (fetched into `assets/docs` by
//! `scripts/fetch-docs-assets.sh`) so `/docs` and `/redoc` work offline from
//! a single binary. Without them the build still succeeds and those pages
//! say how to install the assets.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("../../assets/docs");
    let mut missing = Vec::new();
    for name in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "redoc.standalone.js",
    ] {
        let from = src.join(name);
        println!("cargo:rerun-if-changed={}", from.display());
        let to = out.join(name);
        if std::fs::copy(&from, &to).is_err() {
            missing.push(name);
            let _ = std::fs::write(&to, b"");
        }
    }
    println!("cargo:rustc-check-cfg=cfg(facegate_docs_assets)");
    if missing.is_empty() {
        println!("cargo:rustc-cfg=facegate_docs_assets");
    } else {
        println!(
            "cargo:warning=API docs assets missing ({}): run scripts/fetch-docs-assets.sh and rebuild",
            missing.join(", ")
        );
    }
}
