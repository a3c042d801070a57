//! Compiles the small C++ shim over dlib's detectors when the `dlib` feature
//! is on. The system dlib (Debian's `libdlib-dev`) provides headers and the
//! shared library; `scripts/setup.sh` installs it.

fn main() {
    println!("cargo:rerun-if-changed=cpp/detect_shim.cpp");
    if std::env::var_os("CARGO_FEATURE_DLIB").is_none() {
        return;
    }
    // dlib's HOG code is header templates compiled right here, and picks
    // its SIMD paths from the compiler's target flags: measured on a 640x480
    // photo, plain x86-64 takes 36 ms, x86-64-v2 (SSE4.2) 30 ms, native
    // (AVX2) 23 ms. The default is x86-64-v2, safe on any x86 server of the
    // last decade; the workspace's .cargo/config.toml asks for `native`
    // because a source build normally runs where it was built. Set
    // FACEGATE_DLIB_ARCH=x86-64-v2 (the Dockerfile does) for portable builds.
    println!("cargo:rerun-if-env-changed=FACEGATE_DLIB_ARCH");
    let arch = std::env::var("FACEGATE_DLIB_ARCH").unwrap_or_else(|_| "x86-64-v2".into());
    cc::Build::new()
        .cpp(true)
        .file("cpp/detect_shim.cpp")
        .flag_if_supported("-std=c++14")
        .flag_if_supported("-Wno-deprecated-copy")
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(3)
        .flag_if_supported(format!("-march={arch}"))
        .compile("facegate_dlib_detect");
    println!("cargo:rustc-link-lib=dylib=dlib");
    println!("cargo:rustc-link-lib=dylib=openblas");
    println!("cargo:rustc-link-lib=dylib=lapack");
}
