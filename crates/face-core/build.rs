//! Compiles the small C++ shim over dlib's detectors when the `dlib` feature
//! is on. The system dlib (Debian's `libdlib-dev`) provides headers and the
//! shared library; `scripts/setup.sh` installs it.

fn main() {
    println!("cargo:rerun-if-changed=cpp/detect_shim.cpp");
    if std::env::var_os("CARGO_FEATURE_DLIB").is_none() {
        return;
    }
    cc::Build::new()
        .cpp(true)
        .file("cpp/detect_shim.cpp")
        .flag_if_supported("-std=c++14")
        .flag_if_supported("-Wno-deprecated-copy")
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(3)
        .compile("facegate_dlib_detect");
    println!("cargo:rustc-link-lib=dylib=dlib");
    println!("cargo:rustc-link-lib=dylib=openblas");
    println!("cargo:rustc-link-lib=dylib=lapack");
}
