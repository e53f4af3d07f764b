//! Fault injection for crash tests, in the spirit of the failpoints used by storage engines:
//! with `SYLLABUS_FAULT=<point>@<n>` in the environment, the process sends itself `SIGKILL`
//! the n-th time (1-based) it reaches the named point, so a test can kill a real run at an
//! exact place inside a multi-file write (a `kill -9` from outside cannot aim that well).
//! Unset, a point costs one load of an already-initialised value.
//!
//! Points: `checkpoint-model`, `checkpoint-optimizer`, `checkpoint-extra` (after the ledger
//! snapshot), `checkpoint-manifest` (every file written, not yet renamed into place) and
//! `checkpoint-renamed` (in place, older checkpoints not yet pruned).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms a fault point.
pub const FAULT_ENV: &str = "SYLLABUS_FAULT";

static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// Kills the process with `SIGKILL` if `name` is the armed point and this is its n-th hit.
pub fn point(name: &str) {
    let Some((armed, nth)) = ARMED.get_or_init(read_env) else {
        return;
    };
    if armed == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        // SAFETY: raise only sends a signal to this process; SIGKILL cannot be caught.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}

fn read_env() -> Option<(String, u64)> {
    let value = std::env::var(FAULT_ENV).ok()?;
    let parsed = parse(&value);
    if parsed.is_none() {
        eprintln!("warning: ignoring {FAULT_ENV}={value:?}: expected <point>@<n>, n >= 1");
    }
    parsed
}

fn parse(value: &str) -> Option<(String, u64)> {
    let (name, nth) = value.rsplit_once('@')?;
    let nth: u64 = nth.parse().ok()?;
    (!name.is_empty() && nth >= 1).then(|| (name.to_string(), nth))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn point_and_count() {
        assert_eq!(
            parse("checkpoint-model@2"),
            Some(("checkpoint-model".into(), 2))
        );
        assert_eq!(parse("checkpoint-model"), None);
        assert_eq!(parse("checkpoint-model@0"), None);
        assert_eq!(parse("@3"), None);
        assert_eq!(parse("x@-1"), None);
    }
}
