//! Generates the C header into OUT_DIR (never into the source tree); tests/header.rs checks that the committed
//! include/xeroguard.h matches it. On Linux it also gives the shared library its SONAME.
fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("xeroguard.h");
    let mut config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).expect("cbindgen.toml");
    let version = |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version");
    config.after_includes = Some(format!(
        "\n#define XEROGUARD_VERSION_MAJOR {}\n#define XEROGUARD_VERSION_MINOR {}\n#define XEROGUARD_VERSION_PATCH {}",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH")
    ));
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&out);
    println!("cargo:rustc-env=XEROGUARD_GENERATED_HEADER={}", out.display());

    // The shared library's SONAME (Linux): libxeroguard.so.MAJOR, or libxeroguard.so.0.MINOR before 1.0, where a
    // minor release may break the ABI. The Makefile names the installed file and its links after it.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let soname = match version("MAJOR").as_str() {
            "0" => format!("libxeroguard.so.0.{}", version("MINOR")),
            major => format!("libxeroguard.so.{major}"),
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
        println!("cargo:rustc-env=XEROGUARD_SONAME={soname}");
    }
}
