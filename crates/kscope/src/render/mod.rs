//! Rendering of library results: plain text for people (with colour on a
//! terminal), JSON for scripts.

pub mod core_info;
pub mod crash;
pub mod doctor;
pub mod json;
pub mod text;
pub mod trace_cmd;
pub mod trace_list;
