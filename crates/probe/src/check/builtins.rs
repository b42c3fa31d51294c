//! The built-in functions' signatures, which the checker checks calls
//! against and code generation reads result types from.

use super::Ty;

/// A built-in function: its name, parameter types and result.
pub struct Builtin {
    /// Its name.
    pub name: &'static str,
    /// Its parameters' types.
    pub params: &'static [Ty],
    /// What it gives.
    pub result: Ty,
}

/// Every built-in function but the printing ones (`printf`, `print`,
/// `println`, `sprintf`), whose arguments are checked against their format.
const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "exit",
        params: &[],
        result: Ty::Void,
    },
    Builtin {
        name: "execname",
        params: &[],
        result: Ty::Str,
    },
    Builtin {
        name: "pid",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "tid",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "ppid",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "uid",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "gid",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "cpu",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "gettimeofday_ns",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "gettimeofday_us",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "gettimeofday_ms",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "gettimeofday_s",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "local_clock_ns",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "pp",
        params: &[],
        result: Ty::Str,
    },
    Builtin {
        name: "probefunc",
        params: &[],
        result: Ty::Str,
    },
    Builtin {
        name: "target",
        params: &[],
        result: Ty::Long,
    },
    Builtin {
        name: "user_string",
        params: &[Ty::Long],
        result: Ty::Str,
    },
    Builtin {
        name: "user_string_n",
        params: &[Ty::Long, Ty::Long],
        result: Ty::Str,
    },
    Builtin {
        name: "kernel_string",
        params: &[Ty::Long],
        result: Ty::Str,
    },
    Builtin {
        name: "strlen",
        params: &[Ty::Str],
        result: Ty::Long,
    },
    Builtin {
        name: "substr",
        params: &[Ty::Str, Ty::Long, Ty::Long],
        result: Ty::Str,
    },
    Builtin {
        name: "isinstr",
        params: &[Ty::Str, Ty::Str],
        result: Ty::Long,
    },
    Builtin {
        name: "backtrace",
        params: &[],
        result: Ty::Stack,
    },
    Builtin {
        name: "ubacktrace",
        params: &[],
        result: Ty::Stack,
    },
    Builtin {
        name: "print_backtrace",
        params: &[],
        result: Ty::Void,
    },
    Builtin {
        name: "print_ubacktrace",
        params: &[],
        result: Ty::Void,
    },
    Builtin {
        name: "print_stack",
        params: &[Ty::Stack],
        result: Ty::Void,
    },
    Builtin {
        name: "print_ustack",
        params: &[Ty::Stack],
        result: Ty::Void,
    },
];

/// The names of every built-in function, the printing ones included.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS
        .iter()
        .map(|b| b.name)
        .chain(["printf", "print", "println", "sprintf"])
}

/// The built-in function `name`, if it is one (not a printing one).
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
