//! `syllabus` command-line entry point: parse, dispatch, report errors. The work lives in the
//! library; the commands are in `cli/`.

mod cli;

fn main() {
    tune_allocator();
    if let Err(err) = cli::run() {
        eprintln!("error: {}", render(&err));
        std::process::exit(1);
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the message already
/// holds (library errors embed their OS error's text, which `{:#}` would print a second time).
fn render(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// Keeps freed memory in glibc's heap instead of returning it to the kernel. A training step
/// allocates and frees several [B*T, V] buffers (412 MB each for the tiny model); with glibc's
/// defaults every one is a fresh mmap whose pages the kernel must zero again, which measured
/// ~20% of a CPU step (1000 -> 820 ms on the tiny preset, 2 cores).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
