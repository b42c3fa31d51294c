//! Integration tests of kscope-tracedat, one binary: the trace-cmd
//! fixtures (`fixtures`), writing and reading back with trace-cmd as the
//! oracle (`round_trip`), and corrupt or hostile input (`malformed`);
//! `seeds` makes seeds for the fuzz target.

mod build;
mod fixtures;
mod malformed;
mod round_trip;
mod util;
