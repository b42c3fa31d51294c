//! `/proc/PID/limits`: the resource limits of a process, one row per
//! limit with its soft and hard values. kscope reads the core-size row
//! here instead of calling getrlimit(2), so that it needs no unsafe code.

use serde::{Deserialize, Serialize};

/// A soft/hard limit pair; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// The limit in force.
    pub soft: Option<u64>,
    /// The ceiling the soft limit may be raised to.
    pub hard: Option<u64>,
}

/// Finds the row whose name is `name` ("Max core file size").
pub fn find_limit(text: &str, name: &str) -> Option<Limit> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let mut values = line[name.len()..].split_whitespace();
    let parse = |v: Option<&str>| -> Option<Option<u64>> {
        match v? {
            "unlimited" => Some(None),
            number => number.parse().ok().map(Some),
        }
    };
    Some(Limit {
        soft: parse(values.next())?,
        hard: parse(values.next())?,
    })
}

/// Prints a limit value as the shell's ulimit would.
pub fn show(value: Option<u64>) -> String {
    value.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max core file size        0                    unlimited            bytes
Max open files            1024                 524288               files
";

    #[test]
    fn core_size_soft_and_hard_are_read() {
        let limit = find_limit(SAMPLE, "Max core file size").unwrap();
        assert_eq!(limit.soft, Some(0));
        assert_eq!(limit.hard, None);
        assert_eq!(show(limit.hard), "unlimited");
        let files = find_limit(SAMPLE, "Max open files").unwrap();
        assert_eq!(files.soft, Some(1024));
    }

    #[test]
    fn a_missing_or_malformed_row_is_none() {
        assert_eq!(find_limit(SAMPLE, "Max nothing"), None);
        assert_eq!(
            find_limit("Max core file size   lots  x\n", "Max core file size"),
            None
        );
    }
}
