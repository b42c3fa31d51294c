//! Globs over event and system names (`sched_*`, `sys_enter_open*`), as
//! `trace stream -e`, `trace report -F` and trace-cmd take them.

/// A name pattern that is not a glob.
#[derive(Debug, thiserror::Error)]
#[error("bad glob {text:?}")]
pub struct GlobError {
    /// The pattern.
    pub text: String,
    /// What is wrong with it.
    #[source]
    pub source: glob::PatternError,
}

/// `text` as a glob over names.
pub fn name_glob(text: &str) -> Result<glob::Pattern, GlobError> {
    glob::Pattern::new(text).map_err(|source| GlobError {
        text: text.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glob_matches_names_and_a_bad_one_is_named() {
        assert!(
            name_glob("sys_enter_open*")
                .unwrap()
                .matches("sys_enter_openat")
        );
        let error = name_glob("[x").expect_err("an unclosed bracket");
        assert_eq!(error.to_string(), "bad glob \"[x\"");
        assert!(std::error::Error::source(&error).is_some());
    }
}
