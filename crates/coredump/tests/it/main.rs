//! Integration tests of kscope-coredump, one binary: real cores of small C
//! programs built with gcc and crashed with RLIMIT_CORE raised.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod live_core;
