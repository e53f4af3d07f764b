//! The CUDA kernels' sources (`kernels/*.cu`) compiled with the host C++ compiler and run on
//! the CPU (one call per (block, thread); for the cross-entropy's barriers and warp shuffles,
//! one std::thread per CUDA thread) against double-precision textbook implementations
//! (`tests/kernels_host/`). CI has no GPU: this checks the kernels' indexing, arithmetic and
//! reductions; what it cannot check (the GPU's scheduling and memory model, launch limits) is
//! left to `scripts/gpu-check.sh` on a GPU.

use std::path::Path;
use std::process::Command;

#[test]
fn cuda_kernel_sources_match_reference_implementations_on_the_host() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = std::env::temp_dir().join(format!("syllabus-kernels-host-{}", std::process::id()));
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let compiled = Command::new(&cxx)
        // C++20 for std::barrier (the emulated __syncthreads); the kernels read float rows as
        // float4, so no type-based alias analysis on the host.
        .args([
            "-O2",
            "-std=c++20",
            "-pthread",
            "-fno-strict-aliasing",
            "-Wno-unknown-pragmas",
        ])
        .arg("-I")
        .arg(root.join("kernels"))
        .arg("-I")
        .arg(root.join("tests/kernels_host"))
        .arg("-o")
        .arg(&exe)
        .arg(root.join("tests/kernels_host/main.cpp"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler {cxx:?} (set CXX): {e}"));
    assert!(
        compiled.status.success(),
        "{cxx} failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let run = Command::new(&exe)
        .output()
        .expect("run the host kernel check");
    let _ = std::fs::remove_file(&exe);
    let report = String::from_utf8_lossy(&run.stdout);
    eprintln!("{report}");
    assert!(run.status.success(), "kernel checks failed:\n{report}");
    // 5 attention checks per head dimension (32, 64), 3 AdamW and 3 cross-entropy checks.
    assert_eq!(report.lines().filter(|l| l.ends_with(" ok")).count(), 16);
}
