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
    /// The dump's kernel addresses cannot be translated (no page tables,
    /// no `phys_base`).
    #[error("cannot translate the dump's kernel addresses")]
    Translation(#[source] kscope_vmcore::Error),
    /// A command's argument names nothing in the kernel.
    #[error("{0}")]
    Argument(String),
    /// What a [`Kernel`](crate::Kernel) reads once (its symbols, its BTF)
    /// could not be read: the same error at every later use.
    #[error("{0}")]
    Earlier(String),
    /// An error in the context of what was being done.
    #[error("{what}")]
    Context {
        /// What was being done.
        what: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// This error in the context of `what` was being done: printed
    /// `what: error` as a chain.
    pub fn context(self, what: impl Into<String>) -> Error {
        Error::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }
}
