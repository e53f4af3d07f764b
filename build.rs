//! Build-time facts and artefacts:
//! - the candle version this binary was built against (from Cargo.lock), for throughput
//!   reference files: a rate measured with another candle is not the same reference;
//! - with the `cuda` feature, our CUDA kernels (`kernels/*.cu`) compiled to PTX with `nvcc`
//!   for `CUDA_COMPUTE_CAP` (default 90), embedded by `src/kernels/cuda.rs`. The driver JITs
//!   the PTX for the GPU it runs on; scripts/build-cuda.sh puts nvcc on the PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Kernel sources under `kernels/`, without the `.cu` extension.
const KERNELS: [&str; 3] = ["adamw", "attention", "cross_entropy"];

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!(
        "cargo:rustc-env=SYLLABUS_CANDLE_VERSION={}",
        candle_version()
    );
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        compile_kernels();
    }
}

fn candle_version() -> String {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    lock.split("[[package]]")
        .find(|p| p.contains("name = \"candle-core\""))
        .and_then(|p| p.lines().find(|l| l.starts_with("version = ")))
        .map(|l| {
            l.trim_start_matches("version = ")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn compile_kernels() {
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=NVCC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    for name in KERNELS {
        let src = Path::new("kernels").join(format!("{name}.cu"));
        println!("cargo:rerun-if-changed={}", src.display());
        let ptx = out.join(format!("{name}.ptx"));
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", "--std=c++17"])
            .arg(format!("-arch=sm_{cap}"))
            .arg("-o")
            .arg(&ptx)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {nvcc} for {}: {e} (build with scripts/build-cuda.sh, which puts nvcc on the PATH)", src.display())
            });
        assert!(
            status.success(),
            "{nvcc} failed on {} ({status})",
            src.display()
        );
    }
}
