//! Histograms as host probes print them: one line per bucket from the
//! first to the last that holds values, with the bucket's lowest value, a
//! bar of `@` scaled to the largest count, and the count.

use std::fmt::Write;

use crate::check::HistKind;

/// The widest bar, for the largest count.
const BAR_WIDTH: u64 = 50;

/// The text of a histogram of `kind` whose buckets hold `buckets`
/// (ordered as the BPF side keeps them: [`HistKind::buckets`] of them).
/// An empty histogram is its header alone.
pub fn hist_text(kind: HistKind, buckets: &[u64]) -> String {
    let used: Vec<usize> = (0..buckets.len()).filter(|&i| buckets[i] > 0).collect();
    let (first, last) = match (used.first(), used.last()) {
        (Some(&first), Some(&last)) => (first, last),
        _ => (1, 0),
    };
    let labels: Vec<String> = (first..=last).map(|i| label(kind, i)).collect();
    let width = labels.iter().map(String::len).max().unwrap_or(0).max(5);
    let mut out = format!(
        "{:>width$} |{} count\n",
        "value",
        "-".repeat(BAR_WIDTH as usize)
    );
    let top = buckets.iter().copied().max().unwrap_or(1).max(1);
    for (i, label) in (first..=last).zip(labels) {
        let bar = "@".repeat((buckets[i] * BAR_WIDTH / top) as usize);
        let _ = writeln!(
            out,
            "{label:>width$} |{bar:<bar_width$} {}",
            buckets[i],
            bar_width = BAR_WIDTH as usize
        );
    }
    out
}

/// Bucket `i`'s label: its lowest value (`<LO` and `>=HI` for the outer
/// buckets of a linear histogram).
fn label(kind: HistKind, i: usize) -> String {
    match kind {
        HistKind::Log => match i {
            64 => "0".to_string(),
            i if i > 64 => (1i128 << (i - 65)).to_string(),
            i => (-(1i128 << (63 - i))).to_string(),
        },
        HistKind::Linear { lo, .. } if i == 0 => format!("<{lo}"),
        HistKind::Linear { hi, .. } if i + 1 == kind.buckets() => format!(">={hi}"),
        HistKind::Linear { lo, step, .. } => {
            (i128::from(lo) + (i as i128 - 1) * i128::from(step)).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_histogram_shows_the_used_buckets_with_bars() {
        let mut buckets = vec![0u64; 128];
        buckets[64] = 1; // 0
        buckets[66] = 4; // 2..3
        buckets[68] = 2; // 8..15
        let text = hist_text(HistKind::Log, &buckets);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[0].starts_with("value |---"), "{text}");
        assert!(lines[0].ends_with(" count"), "{text}");
        let row = |l: &str| -> (String, usize, String) {
            let (label, rest) = l.split_once(" |").expect("a bar");
            let count = rest.split_whitespace().last().unwrap_or("").to_string();
            (label.trim().to_string(), rest.matches('@').count(), count)
        };
        assert_eq!(row(lines[1]), ("0".into(), 12, "1".into()));
        assert_eq!(row(lines[2]), ("1".into(), 0, "0".into()));
        assert_eq!(row(lines[3]), ("2".into(), 50, "4".into()));
        assert_eq!(row(lines[5]), ("8".into(), 25, "2".into()));
    }

    #[test]
    fn a_linear_histogram_labels_its_outer_buckets() {
        let kind = HistKind::Linear {
            lo: 0,
            hi: 30,
            step: 10,
        };
        // (30 - 0) / 10 + 3 buckets; values at 30 and above go to the last.
        let buckets = [1, 0, 0, 0, 0, 3];
        let text = hist_text(kind, &buckets);
        let labels: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(" |").next().unwrap_or("").trim())
            .collect();
        assert_eq!(labels, ["<0", "0", "10", "20", "30", ">=30"], "{text}");
        assert_eq!(label(HistKind::Log, 0), i64::MIN.to_string());
        assert_eq!(label(HistKind::Log, 127), (1i64 << 62).to_string());
    }

    #[test]
    fn an_empty_histogram_is_its_header() {
        let text = hist_text(HistKind::Log, &[0; 128]);
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
