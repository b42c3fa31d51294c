//! The command of `probe -c` and `trace stream/record --`: exec'd by
//! kscope itself once tracing is set up, so that the traced pid is the
//! command's from its first instruction (no shell in between); a command
//! that cannot start is an error before anything is recorded; how it
//! ended is said on stderr while kscope's own status stays its own.

use std::os::unix::fs::PermissionsExt;

use kscope_testkit::with_unchanged_tracefs;

use crate::{kscope, kscope_ok, stderr, stdout};

/// The issue's probe: the exec of target() prints the program it execs.
const EXEC_OF_TARGET: &str = r#"probe kernel.trace("sched_process_exec") { if (pid() == target()) { printf("exec %s\n", execname()); exit() } }"#;

#[test]
fn target_is_the_command_itself_not_a_shell() {
    with_unchanged_tracefs("probe -c 'sleep 0.2' and target()", |_| {
        let seen: Vec<String> = (0..10)
            .map(|_| {
                let output = kscope_ok(&["probe", "-c", "sleep 0.2", "-e", EXEC_OF_TARGET]);
                stdout(&output)
            })
            .collect();
        assert!(
            seen.iter().all(|out| out == "exec sleep\n"),
            "target()'s exec, in 10 runs: {seen:?}"
        );
    });
}

#[test]
fn the_command_s_pid_opens_nothing_of_kscope_s_before_it_runs() {
    with_unchanged_tracefs("probe -c 'cat /dev/null' and openat", |_| {
        let output = kscope_ok(&[
            "probe",
            "-c",
            "cat /dev/null",
            "-e",
            r#"probe syscall.openat { if (pid() == target()) printf("%s opens %s\n", execname(), user_string($filename)) }"#,
        ]);
        let text = stdout(&output);
        assert!(
            text.lines().any(|l| l == "cat opens /dev/null"),
            "the command's own openat is missing:\n{text}"
        );
        assert!(
            text.lines().all(|l| l.starts_with("cat opens ")),
            "something else opened files under the command's pid:\n{text}"
        );
    });
}

#[test]
fn the_command_s_pid_reads_nothing_of_kscope_s_before_it_runs() {
    with_unchanged_tracefs("probe -c 'cat /dev/null' and read", |_| {
        // The only reads under the command's pid are its own: ld.so's and
        // cat's of /dev/null (0 bytes). The gate's wait was a read(2) of
        // one byte, which a return probe saw as the command's.
        let output = kscope_ok(&[
            "probe",
            "-c",
            "cat /dev/null",
            "-e",
            r#"probe syscall.read.return { if (pid() == target()) printf("%s read %d\n", execname(), $return) }"#,
        ]);
        let text = stdout(&output);
        assert!(
            text.lines().any(|l| l == "cat read 0"),
            "the command's own read is missing:\n{text}"
        );
        assert!(
            text.lines()
                .all(|l| l.starts_with("cat read ") && l != "cat read 1"),
            "a read that is not the command's:\n{text}"
        );
    });
}

/// The names in `dir`.
fn files_in(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .expect("read the temp dir")
        .map(|e| e.expect("entry").file_name())
        .collect()
}

/// `kscope trace record -e sched:sched_switch -o DIR/e.dat -- COMMAND`.
fn record_into(dir: &std::path::Path, command: &[&str]) -> std::process::Output {
    let file = dir.join("e.dat");
    let mut args = vec![
        "trace",
        "record",
        "-e",
        "sched:sched_switch",
        "-o",
        file.to_str().expect("UTF-8 path"),
        "--",
    ];
    args.extend(command);
    kscope(&args)
}

#[test]
fn a_command_that_cannot_start_is_an_error_and_nothing_is_recorded() {
    with_unchanged_tracefs("trace record -- /nonexistent/cmd", |_| {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = record_into(dir.path(), &["/nonexistent/cmd"]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(
            stderr(&output),
            "kscope: error: cannot run /nonexistent/cmd: No such file or directory\n"
        );
        assert_eq!(files_in(dir.path()), Vec::<std::ffi::OsString>::new());
        // Not on $PATH either: the same error, from probe -c too.
        let output = kscope(&[
            "probe",
            "-c",
            "kscope-no-such-command",
            "-e",
            "probe begin { exit() }",
        ]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(
            stderr(&output),
            "kscope: error: cannot run kscope-no-such-command: No such file or directory\n"
        );
        // Found, but the kernel refuses to exec it: an error once tracing
        // is on, and still nothing written nor left in tracefs.
        let programs = tempfile::tempdir().expect("temp dir");
        let not_a_program = programs.path().join("not-a-program");
        std::fs::write(&not_a_program, "just text\n").expect("write");
        std::fs::set_permissions(&not_a_program, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let refused = format!(
            "kscope: error: cannot run {}: Exec format error\n",
            not_a_program.display()
        );
        let output = record_into(dir.path(), &[not_a_program.to_str().expect("UTF-8 path")]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(stderr(&output), refused);
        assert_eq!(files_in(dir.path()), Vec::<std::ffi::OsString>::new());
        // probe -c: the session stops at once with the error.
        let started = std::time::Instant::now();
        let output = kscope(&[
            "probe",
            "-c",
            not_a_program.to_str().expect("UTF-8 path"),
            "-e",
            "probe timer.s(30) { exit() }",
        ]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the session ran on without its command"
        );
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(stderr(&output), refused);
    });
}

#[test]
fn how_a_failed_command_ended_is_said_and_kscope_still_succeeds() {
    with_unchanged_tracefs("commands that fail", |_| {
        let stream = |command: &str| {
            kscope(&[
                "trace",
                "stream",
                "-e",
                "sched:sched_switch",
                "--",
                "sh",
                "-c",
                command,
            ])
        };
        let output = stream("exit 3");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(
            stderr(&output),
            "kscope: the command exited with status 3\n"
        );
        let output = stream("kill -USR1 $$");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(
            stderr(&output),
            "kscope: the command was killed by SIGUSR1\n"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let output = record_into(dir.path(), &["sh", "-c", "exit 3"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(
            stderr(&output).starts_with("kscope: the command exited with status 3\n"),
            "{}",
            stderr(&output)
        );
        let output = kscope(&[
            "probe",
            "-c",
            "sh -c 'exit 3'",
            "-e",
            "probe end { printf(\"end\\n\") }",
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), "end\n");
        assert_eq!(
            stderr(&output),
            "kscope: the command exited with status 3\n"
        );
    });
}
