//! The command line itself: help, version, usage errors.

use crate::{kscope, stderr, stdout};

#[test]
fn help_lists_the_commands_that_exist() {
    let output = kscope(&["--help"]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("doctor"), "{text}");
    assert!(
        text.contains("Tell what this kernel lets a debugger do"),
        "{text}"
    );
}

#[test]
fn doctor_help_explains_the_verdicts_and_the_json_flag() {
    let output = kscope(&["doctor", "--help"]);
    assert!(output.status.success());
    let text = stdout(&output);
    for word in [
        "available",
        "missing",
        "denied",
        "--json",
        "--brief",
        "changes nothing",
    ] {
        assert!(text.contains(word), "{word} not in:\n{text}");
    }
}

#[test]
fn version_prints_the_package_version() {
    let output = kscope(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output).trim(),
        format!("kscope {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_command_is_a_usage_error_with_status_2() {
    let output = kscope(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unrecognized subcommand"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn json_and_brief_do_not_go_together() {
    let output = kscope(&["doctor", "--json", "--brief"]);
    assert_eq!(output.status.code(), Some(2));
}
