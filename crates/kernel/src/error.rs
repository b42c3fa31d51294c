//! The crate's error type.

/// What can go wrong reading the kernel out of a dump.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The dump does not hold memory that a structure needs.
    #[error("cannot read {what}: {source}")]
    Memory {
        /// What was being read.
        what: String,
        /// Why the dump could not give it.
        #[source]
        source: kscope_vmcore::Error,
    },
    /// A symbol the kernel always has is not in the symbol table.
    #[error("the symbol table has no {0}")]
    MissingSymbol(String),
    /// Kernel data (or a file given for the kernel) is not what the
    /// kernel writes: the dump is damaged, or the file is of another
    /// kernel.
    #[error("{0}")]
    Corrupt(String),
    /// A type, or a member of one, that the kernel's BTF does not have.
    #[error("{0}")]
    Type(String),
    /// The kernel's BTF does not have the documented shape.
    #[error("the kernel's BTF: {0}")]
    Btf(#[from] kscope_btf::BtfError),
    /// Reading a file given for the kernel failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}
