//! The kernel's build configuration, as `/proc/config.gz` (CONFIG_IKCONFIG_PROC)
//! or `/boot/config-RELEASE` hold it: `CONFIG_X=value` lines and
//! `# CONFIG_X is not set` lines.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A parsed kernel configuration and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// The file it was read from.
    pub source: PathBuf,
    options: HashMap<String, String>,
}

/// The value of one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionValue<'a> {
    /// `=y` or `=m`.
    Enabled,
    /// `# CONFIG_X is not set`.
    NotSet,
    /// Any other value (`=250`, `="string"`).
    Value(&'a str),
    /// The option does not appear at all (not offered on this kernel).
    Absent,
}

impl KernelConfig {
    /// Parses configuration text read from `source`.
    pub fn parse(source: impl Into<PathBuf>, text: &str) -> KernelConfig {
        let mut options = HashMap::new();
        for line in text.lines().map(str::trim) {
            let unset = line
                .strip_prefix("# ")
                .and_then(|rest| rest.strip_suffix(" is not set"));
            if let Some(name) = unset {
                if name.starts_with("CONFIG_") && !name.contains(' ') {
                    options.insert(name.to_string(), "n".to_string());
                }
            } else if let Some((name, value)) = line.split_once('=')
                && name.starts_with("CONFIG_")
            {
                options.insert(name.to_string(), value.to_string());
            }
        }
        KernelConfig {
            source: source.into(),
            options,
        }
    }

    /// Reads and parses a configuration file, gunzipping it when its name
    /// ends in `.gz`.
    pub fn read(path: &Path) -> std::io::Result<KernelConfig> {
        let bytes = std::fs::read(path)?;
        let text = if path.extension().is_some_and(|e| e == "gz") {
            let mut text = String::new();
            flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text)?;
            text
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Ok(KernelConfig::parse(path, &text))
    }

    /// The places a running kernel's configuration is usually found.
    pub fn candidates(release: &str) -> Vec<PathBuf> {
        vec![
            PathBuf::from("/proc/config.gz"),
            PathBuf::from(format!("/boot/config-{release}")),
            PathBuf::from(format!("/lib/modules/{release}/config")),
        ]
    }

    /// The first readable configuration among `candidates`.
    pub fn find(release: &str) -> Option<KernelConfig> {
        Self::candidates(release)
            .iter()
            .find_map(|path| KernelConfig::read(path).ok())
    }

    /// One option's value.
    pub fn get(&self, name: &str) -> OptionValue<'_> {
        OptionValue::of(self.raw(name))
    }

    /// One option's value as the file spells it (`n` for "is not set"),
    /// or `None` when the file does not mention it.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    /// CONFIG_HZ, the rate of jiffies, when the file gives it.
    pub fn hz(&self) -> Option<u64> {
        match self.get("CONFIG_HZ") {
            OptionValue::Value(v) => v.parse().ok(),
            _ => None,
        }
    }

    /// True when the option is `y` or `m`.
    pub fn enabled(&self, name: &str) -> bool {
        self.get(name) == OptionValue::Enabled
    }

    /// How many options are listed (set or not).
    pub fn len(&self) -> usize {
        self.options.len()
    }

    /// True when no option was found (not a configuration file).
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }

    /// `CONFIG_X=y`, `CONFIG_X is not set` or `CONFIG_X is absent`, as
    /// evidence for a report.
    pub fn describe(&self, name: &str) -> String {
        describe(name, self.raw(name))
    }
}

impl<'a> OptionValue<'a> {
    /// The value of an option spelt `raw` in the file (`n` for "is not
    /// set"), or absent.
    pub fn of(raw: Option<&'a str>) -> OptionValue<'a> {
        match raw {
            None => OptionValue::Absent,
            Some("y" | "m") => OptionValue::Enabled,
            Some("n") => OptionValue::NotSet,
            Some(other) => OptionValue::Value(other),
        }
    }
}

/// `CONFIG_X=y`, `CONFIG_X is not set` or `CONFIG_X is absent` for option
/// `name` spelt `raw` in the file.
pub(crate) fn describe(name: &str, raw: Option<&str>) -> String {
    match raw {
        None => format!("{name} is absent"),
        Some("n") => format!("{name} is not set"),
        Some(value) => format!("{name}={value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SAMPLE: &str = "\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.0 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"
CONFIG_KPROBES=y
# CONFIG_KEXEC is not set
CONFIG_HZ=250
CONFIG_QFMT_V2=m
# This is not an option
";

    #[test]
    fn set_unset_valued_and_absent_options_are_told_apart() {
        let config = KernelConfig::parse("/proc/config.gz", SAMPLE);
        assert_eq!(config.get("CONFIG_KPROBES"), OptionValue::Enabled);
        assert_eq!(config.get("CONFIG_QFMT_V2"), OptionValue::Enabled);
        assert_eq!(config.get("CONFIG_KEXEC"), OptionValue::NotSet);
        assert_eq!(config.get("CONFIG_HZ"), OptionValue::Value("250"));
        assert_eq!(config.hz(), Some(250));
        assert_eq!(config.get("CONFIG_NOPE"), OptionValue::Absent);
        assert_eq!(config.len(), 5);
        assert_eq!(config.describe("CONFIG_KEXEC"), "CONFIG_KEXEC is not set");
        assert_eq!(config.describe("CONFIG_KPROBES"), "CONFIG_KPROBES=y");
    }

    #[test]
    fn a_gzipped_config_reads_like_a_plain_one() {
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-config-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        let gz = dir.join("config.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(SAMPLE.as_bytes()).unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        let plain = dir.join("config-6.1.0");
        std::fs::write(&plain, SAMPLE).unwrap();
        let a = KernelConfig::read(&gz).unwrap();
        let b = KernelConfig::read(&plain).unwrap();
        assert_eq!(a.options, b.options);
        assert!(a.enabled("CONFIG_KPROBES"));
    }

    #[test]
    fn a_corrupt_gzip_is_an_error_not_a_panic() {
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-badgz-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        let gz = dir.join("config.gz");
        std::fs::write(&gz, b"\x1f\x8b\x08\x00garbage").unwrap();
        assert!(KernelConfig::read(&gz).is_err());
    }
}
