//! The user-space half of SystemTap's statistics (`s <<< v`, `@count`,
//! `@sum`, `@min`, `@max`, `@avg`, `@variance`, `@hist_log`,
//! `@hist_linear`): the layout of the per-CPU value that a script's BPF
//! code updates, the merge of those values over CPUs into one
//! [`Aggregate`], the extractors with SystemTap's integer semantics, the
//! histogram buckets ([`HistKind::bucket`], the reference the BPF side
//! must compute the same way), and the ASCII bar chart that `print`
//! shows ([`render_hist`]), byte for byte as SystemTap 4.x–5.x's runtime
//! prints it (`runtime/stat-common.c`, `_stp_stat_print_histogram_buf`).
//!
//! A statistic's value, per CPU and per key, is native-endian 64-bit
//! words (see [`value_size`] and the `WORD_*` constants):
//!
//! | word      | holds                                                |
//! |-----------|------------------------------------------------------|
//! | 0         | count of values (u64)                                |
//! | 1         | sum of values (i64, wrapping)                        |
//! | 2, 3      | min and max (i64; meaningless while the count is 0)  |
//! | 4         | sum of squares (u64, wrapping)                       |
//! | 5 ..      | one count per histogram bucket (u64), if any         |
//!
//! `s <<< v` on a CPU: if the count is 0, min and max become `v`,
//! otherwise they take `v` if it is smaller or larger; the count grows by
//! one, `v` is added to the sum and `v * v` (64-bit, wrapping) to the sum
//! of squares, and the count of bucket [`HistKind::bucket`]`(v)` grows by
//! one. A CPU with a count of 0 is skipped by the merge whatever its min
//! and max hold, so a fresh entry needs only zeros.
//!
//! Bucket numbers are SystemTap's (which its `@hist_log(s)[N]` indexes;
//! kscope does not accept that yet): a log histogram has 128 buckets, 64
//! holding 0; a linear one has an underflow bucket 0, one bucket per
//! step, and an overflow bucket last.
//!
//! ```
//! use kscope_probe::stats::{Aggregate, HistKind, render_hist, value_size};
//!
//! let kind = HistKind::Log;
//! // One CPU saw 1, 2, 2 and 3; the other saw nothing.
//! let mut busy = vec![0u64; value_size(Some(&kind)) / 8];
//! busy[..5].copy_from_slice(&[4, 8, 1, 3, 1 + 4 + 4 + 9]);
//! busy[5 + kind.bucket(1)] += 1;
//! busy[5 + kind.bucket(2)] += 3;
//! let busy: Vec<u8> = busy.iter().flat_map(|w| w.to_ne_bytes()).collect();
//! let idle = vec![0u8; value_size(Some(&kind))];
//!
//! let agg = Aggregate::merge_cpus(&[&busy, &idle], Some(&kind))?;
//! assert_eq!((agg.count(), agg.sum(), agg.min()?, agg.max()?, agg.avg()?), (4, 8, 1, 3, 2));
//! let mut text = String::new();
//! render_hist(&kind, agg.hist(), &mut text)?;
//! assert_eq!(text, "\
//! value |-------------------------------------------------- count
//!     0 |                                                   0
//!     1 |@                                                  1
//!     2 |@@@                                                3
//!     4 |                                                   0
//!     8 |                                                   0
//!
//! ");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// Word index of the count in a statistic's per-CPU value.
pub const WORD_COUNT: usize = 0;
/// Word index of the (wrapping) sum.
pub const WORD_SUM: usize = 1;
/// Word index of the minimum.
pub const WORD_MIN: usize = 2;
/// Word index of the maximum.
pub const WORD_MAX: usize = 3;
/// Word index of the (wrapping) sum of squares, which `@variance` uses.
pub const WORD_SUMSQ: usize = 4;
/// Word index of the first histogram bucket.
pub const WORD_HIST: usize = 5;

/// Buckets of a log histogram (SystemTap's `HIST_LOG_BUCKETS`): 63 for
/// negative values, one for 0, 64 for positive values (the last of which
/// no i64 reaches).
pub const LOG_BUCKETS: usize = 128;

/// The log histogram's bucket for 0 (SystemTap's `HIST_LOG_BUCKET0`).
pub const LOG_BUCKET_ZERO: usize = 64;

/// The most buckets a linear histogram may have, counting its underflow
/// and overflow buckets (SystemTap's `STP_MAX_BUCKETS`): so at most 126
/// steps between its low and high ends.
pub const MAX_LINEAR_BUCKETS: usize = 128;

/// How many characters wide the longest bar is (SystemTap's `HIST_WIDTH`).
const HIST_WIDTH: u64 = 50;

/// How many empty buckets [`render_hist`] keeps on each side of a
/// non-empty one before it folds a run of empty ones into a `~` line
/// (SystemTap's `HIST_ELISION` default).
const HIST_ELISION: i64 = 2;

/// The largest bit shift `@variance(s, N)` takes (SystemTap's limit).
pub const MAX_VARIANCE_SHIFT: i64 = 62;

/// A histogram's shape: which bucket each value falls into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistKind {
    /// `@hist_log(s)`: one bucket per power of two, mirrored for negative
    /// values, and one for 0.
    Log,
    /// `@hist_linear(s, lo, hi, step)`, built by [`HistKind::linear`].
    Linear(LinearHist),
}

/// The parameters of `@hist_linear(s, lo, hi, step)`, checked by
/// [`HistKind::linear`] (the only way to make one, so that every
/// `LinearHist` has a positive step and 1 to 126 in-range buckets):
/// buckets `step` wide from `lo` on, the last in-range one holding `hi`
/// (so it ends at or past `hi`), with one underflow bucket before them and
/// one overflow bucket after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearHist {
    lo: i64,
    hi: i64,
    step: i64,
}

impl LinearHist {
    /// The first in-range bucket's lowest value.
    pub fn lo(&self) -> i64 {
        self.lo
    }

    /// The highest value the in-range buckets must hold.
    pub fn hi(&self) -> i64 {
        self.hi
    }

    /// Each bucket's width; positive.
    pub fn step(&self) -> i64 {
        self.step
    }

    /// The number of step-wide buckets, `(hi - lo) / step + 1`, from 1 to
    /// 126: the buckets between the underflow bucket 0 and the overflow
    /// bucket `in_range_buckets() + 1`.
    pub fn in_range_buckets(&self) -> usize {
        // `HistKind::linear` checked that this is in 1..=126.
        ((i128::from(self.hi) - i128::from(self.lo)) / i128::from(self.step) + 1) as usize
    }

    /// The bucket of `v` (see [`HistKind::bucket`]).
    fn bucket(&self, v: i64) -> usize {
        if v < self.lo {
            return 0;
        }
        let q = v.wrapping_sub(self.lo) as u64 / self.step as u64;
        let in_range = self.in_range_buckets();
        if q >= in_range as u64 {
            in_range + 1
        } else {
            q as usize + 1
        }
    }

    /// The label of a bucket (see [`HistKind::label`]).
    fn label(&self, bucket: usize) -> (&'static str, i128) {
        let step_from_lo = |n: usize| i128::from(self.lo) + n as i128 * i128::from(self.step);
        if bucket == 0 {
            ("<", i128::from(self.lo))
        } else if bucket == self.in_range_buckets() + 1 {
            (">", step_from_lo(bucket - 2))
        } else {
            ("", step_from_lo(bucket - 1))
        }
    }
}

/// Why a statistic's parameters or values cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// `@hist_linear` with a step of 0 (SystemTap: "histogram: interval
    /// cannot be zero.").
    #[error("@hist_linear: the step (interval) cannot be zero")]
    ZeroStep,
    /// `@hist_linear` with a negative step; SystemTap's runtime rejects
    /// most of these as a wrong number of buckets, and buckets the rest
    /// wrongly.
    #[error("@hist_linear: the step (interval) must be positive, not {step}")]
    NegativeStep {
        /// The step given.
        step: i64,
    },
    /// `@hist_linear` whose `(hi - lo) / step + 1` buckets are not
    /// between 1 and 126 (SystemTap: "histogram: Number of buckets must be
    /// between 1 and 126").
    #[error(
        "@hist_linear: the number of buckets, (high - low) / step + 1 = ({hi} - {lo}) / {step} + 1 = {buckets}, \
         must be between 1 and 126; adjust the low, high and step values"
    )]
    BucketCount {
        /// The low end given.
        lo: i64,
        /// The high end given.
        hi: i64,
        /// The step given.
        step: i64,
        /// The number of in-range buckets they make.
        buckets: i128,
    },
    /// `@variance(s, N)` with N outside 0..=62 (SystemTap: "bit shift (N)
    /// out of range <0..62>").
    #[error("@variance: bit shift ({shift}) out of range <0..62>")]
    VarianceShift {
        /// The shift given.
        shift: i64,
    },
    /// A CPU's value is not the size the statistic's layout has: the map
    /// and the code that reads it disagree.
    #[error("statistic value of CPU {cpu} is {actual} bytes; its layout has {expected}")]
    ValueSize {
        /// Index of the CPU's value in the slice given.
        cpu: usize,
        /// The layout's size, [`value_size`].
        expected: usize,
        /// The value's size.
        actual: usize,
    },
}

/// The error SystemTap raises when a script reads `@min`, `@max`, `@avg`,
/// `@variance` or a histogram of a statistic that holds no value (its
/// text, "empty aggregate", is SystemTap's). `@count` and `@sum` of such a
/// statistic are 0 instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("empty aggregate")]
pub struct EmptyAggregate;

impl HistKind {
    /// A linear histogram, checked as SystemTap checks it: the step must
    /// be positive and `(hi - lo) / step + 1` (integer division, which
    /// truncates toward zero) between 1 and 126. So `hi` may equal `lo`
    /// (one bucket), and `hi` need not be a multiple of `step` past `lo`.
    pub fn linear(lo: i64, hi: i64, step: i64) -> Result<HistKind, StatsError> {
        if step == 0 {
            return Err(StatsError::ZeroStep);
        }
        if step < 0 {
            return Err(StatsError::NegativeStep { step });
        }
        let buckets = (i128::from(hi) - i128::from(lo)) / i128::from(step) + 1;
        if !(1..=(MAX_LINEAR_BUCKETS as i128 - 2)).contains(&buckets) {
            return Err(StatsError::BucketCount {
                lo,
                hi,
                step,
                buckets,
            });
        }
        Ok(HistKind::Linear(LinearHist { lo, hi, step }))
    }

    /// How many u64 bucket counts the histogram keeps, underflow and
    /// overflow buckets included.
    pub fn buckets(&self) -> usize {
        match *self {
            HistKind::Log => LOG_BUCKETS,
            HistKind::Linear(linear) => linear.in_range_buckets() + 2,
        }
    }

    /// The bucket a value falls into, as SystemTap's runtime puts it there
    /// (`__stp_stat_add`); the BPF code must compute the same.
    ///
    /// Log: 0 goes to bucket 64; a positive `v` to `65 + floor(log2 v)`
    /// (1 to 65, 2 and 3 to 66, `i64::MAX` to 127); a negative `v` to
    /// `63 - floor(log2 |v|)` with `|v|` taken as u64 (-1 to 63, -2 and -3
    /// to 62, `i64::MIN` to 0). `floor(log2 x)` of a non-zero u64 takes no
    /// loop: six steps, each testing whether `x >> k` is non-zero for k =
    /// 32, 16, 8, 4, 2, 1 and, if so, shifting `x` right by k and adding k.
    ///
    /// Linear: a value below `lo` (signed compare) goes to bucket 0;
    /// otherwise `q = (v - lo) / step`, computed as u64 (exact, since
    /// `v >= lo`), and the value goes to bucket `q + 1`, or to the last
    /// (overflow) bucket when `q` is at least the number of in-range
    /// buckets. Comparing `q` before adding 1 keeps `q + 1` from wrapping.
    pub fn bucket(&self, v: i64) -> usize {
        match *self {
            HistKind::Log => log_bucket(v),
            HistKind::Linear(linear) => linear.bucket(v),
        }
    }

    /// The value SystemTap prints for a bucket: the lowest value of a log
    /// bucket (the most negative for negative buckets), and for a linear
    /// one its lowest value, with `<` before the underflow bucket's `lo`
    /// and `>` before the overflow bucket's label, which is the last
    /// in-range bucket's lowest value.
    fn label(&self, bucket: usize) -> (&'static str, i128) {
        match *self {
            HistKind::Log => ("", i128::from(log_bucket_value(bucket))),
            HistKind::Linear(linear) => linear.label(bucket),
        }
    }
}

/// A log histogram's bucket for `v` (see [`HistKind::bucket`]).
fn log_bucket(v: i64) -> usize {
    match v.cmp(&0) {
        std::cmp::Ordering::Equal => LOG_BUCKET_ZERO,
        std::cmp::Ordering::Greater => LOG_BUCKET_ZERO + 1 + floor_log2(v as u64),
        std::cmp::Ordering::Less => LOG_BUCKET_ZERO - 1 - floor_log2(v.unsigned_abs()),
    }
}

/// `floor(log2 x)` of a non-zero `x`: the index of its highest set bit.
fn floor_log2(x: u64) -> usize {
    63 - x.leading_zeros() as usize
}

/// The value SystemTap labels a log bucket with: 0 for bucket 64,
/// `2^(b - 65)` above it, and `i64::MIN >> b` (arithmetic shift) below it.
fn log_bucket_value(bucket: usize) -> i64 {
    match bucket.cmp(&LOG_BUCKET_ZERO) {
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1 << (bucket - LOG_BUCKET_ZERO - 1),
        std::cmp::Ordering::Less => i64::MIN >> bucket,
    }
}

/// The variance of `count` values whose sum is `sum` and sum of squares
/// `sumsq`, as [`Aggregate::variance`] describes.
pub fn variance_of(count: u64, sum: i64, sumsq: u64) -> i64 {
    if count < 2 {
        return 0;
    }
    let n = count as i64;
    let m = sum.wrapping_div(n);
    let r = sum.wrapping_sub(n.wrapping_mul(m));
    let spread = (sumsq as i64)
        .wrapping_sub(2i64.wrapping_mul(m).wrapping_mul(sum))
        .wrapping_add(n.wrapping_mul(m).wrapping_mul(m));
    // r²/n rounded up, so that the division below truncates the exact
    // quotient.
    let fraction = (r.wrapping_mul(r) as u64).div_ceil(count) as i64;
    spread.wrapping_sub(fraction).wrapping_div(n - 1)
}

/// The size in bytes of a statistic's value on one CPU: five words and
/// one per histogram bucket. Per-CPU map lookups return each CPU's value
/// at this size, since it is a multiple of 8.
pub fn value_size(kind: Option<&HistKind>) -> usize {
    (WORD_HIST + kind.map_or(0, HistKind::buckets)) * 8
}

/// Checks the bit shift of `@variance(s, N)` as SystemTap does (0 to 62).
/// kscope computes the variance exactly from the sums, so the shift,
/// which only scales SystemTap's integer arithmetic, changes nothing.
pub fn check_variance_shift(shift: i64) -> Result<(), StatsError> {
    if (0..=MAX_VARIANCE_SHIFT).contains(&shift) {
        Ok(())
    } else {
        Err(StatsError::VarianceShift { shift })
    }
}

/// A statistic's values over all CPUs: what SystemTap's extractors read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    count: u64,
    sum: i64,
    min: i64,
    max: i64,
    sumsq: u64,
    hist: Vec<u64>,
}

impl Aggregate {
    /// Merges the per-CPU values of one statistic (one key of an array),
    /// each laid out as the module doc says: counts, sums, sums of squares
    /// and bucket counts add up (wrapping, as they do in the kernel); min
    /// and max are taken over the CPUs that saw a value, since a CPU whose
    /// count is 0 holds no meaningful min or max.
    pub fn merge_cpus(values: &[&[u8]], kind: Option<&HistKind>) -> Result<Aggregate, StatsError> {
        let expected = value_size(kind);
        let mut agg = Aggregate {
            count: 0,
            sum: 0,
            min: 0,
            max: 0,
            sumsq: 0,
            hist: vec![0; kind.map_or(0, HistKind::buckets)],
        };
        for (cpu, value) in values.iter().enumerate() {
            if value.len() != expected {
                return Err(StatsError::ValueSize {
                    cpu,
                    expected,
                    actual: value.len(),
                });
            }
            agg.add_cpu(value);
        }
        Ok(agg)
    }

    /// Adds one CPU's value, already checked to have the layout's size.
    fn add_cpu(&mut self, value: &[u8]) {
        let word = |i: usize| {
            let bytes: [u8; 8] = value[i * 8..i * 8 + 8].try_into().expect("an 8-byte word");
            u64::from_ne_bytes(bytes)
        };
        let count = word(WORD_COUNT);
        if count == 0 {
            return;
        }
        let (min, max) = (word(WORD_MIN) as i64, word(WORD_MAX) as i64);
        if self.count == 0 {
            (self.min, self.max) = (min, max);
        } else {
            (self.min, self.max) = (self.min.min(min), self.max.max(max));
        }
        self.count = self.count.wrapping_add(count);
        self.sum = self.sum.wrapping_add(word(WORD_SUM) as i64);
        self.sumsq = self.sumsq.wrapping_add(word(WORD_SUMSQ));
        for (i, bucket) in self.hist.iter_mut().enumerate() {
            *bucket = bucket.wrapping_add(word(WORD_HIST + i));
        }
    }

    /// Whether no CPU saw a value: then `@min`, `@max`, `@avg`,
    /// `@variance` and printing a histogram are SystemTap's "empty
    /// aggregate" error, and `@count` and `@sum` are 0.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `@count(s)`: how many values were added (0 when none).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// `@sum(s)`: their sum, wrapped to 64 bits (0 when none).
    pub fn sum(&self) -> i64 {
        self.sum
    }

    /// `@min(s)`: the smallest value.
    pub fn min(&self) -> Result<i64, EmptyAggregate> {
        self.non_empty().map(|agg| agg.min)
    }

    /// `@max(s)`: the largest value.
    pub fn max(&self) -> Result<i64, EmptyAggregate> {
        self.non_empty().map(|agg| agg.max)
    }

    /// `@avg(s)`: the sum divided by the count as SystemTap divides
    /// (`_stp_div64`: 64-bit signed division, truncating toward zero, so
    /// the average of -1 and -2 is -1).
    pub fn avg(&self) -> Result<i64, EmptyAggregate> {
        self.non_empty()
            .map(|agg| agg.sum.wrapping_div(agg.count as i64))
    }

    /// `@variance(s)`: the sample variance `Σ(v − mean)² / (n − 1)`,
    /// truncated, computed in wrapping 64-bit integers without losing the
    /// fraction of the mean: with `m = Σv / n` (truncated) and
    /// `r = Σv − n·m`, `Σ(v − mean)² = Σ(v − m)² − r²/n`, and
    /// `Σ(v − m)² = Σv² − 2·m·Σv + n·m²`, which is right whenever the
    /// result fits even if Σv² wrapped. The BPF code computes the same
    /// steps ([`variance_of`]), so a probe in the kernel and one in
    /// kscope's process agree. 0 for a single value (SystemTap divides by
    /// `n − 1 = 0` there and its division gives 0). SystemTap computes it
    /// with Welford's algorithm and gets other, often less exact, numbers
    /// (its manual: the variance of 1..5 is 12 at bit shift 0; this
    /// gives 2, the true value 2.5); docs/KNOWN-DIFFERENCES.md says more.
    pub fn variance(&self) -> Result<i64, EmptyAggregate> {
        let agg = self.non_empty()?;
        Ok(variance_of(agg.count, agg.sum, agg.sumsq))
    }

    /// The bucket counts, indexed by SystemTap's bucket numbers (empty
    /// when the statistic has no histogram). SystemTap refuses to index
    /// or print the histogram of an empty statistic; see [`is_empty`].
    ///
    /// [`is_empty`]: Aggregate::is_empty
    pub fn hist(&self) -> &[u64] {
        &self.hist
    }

    /// The aggregate if it holds a value, or SystemTap's error.
    fn non_empty(&self) -> Result<&Aggregate, EmptyAggregate> {
        if self.is_empty() {
            Err(EmptyAggregate)
        } else {
            Ok(self)
        }
    }
}

/// Appends the bar chart that SystemTap's `print(@hist_log(s))` and
/// `print(@hist_linear(s, lo, hi, step))` print, byte for byte: a header
/// whose `value` column is as wide as the widest label shown (at least 5),
/// one row per bucket from two buckets before the lowest non-empty one to
/// two after the highest (a log histogram does not reach below bucket 0's
/// row into negative buckets unless it holds negative values; a linear one
/// shows its `<lo` and `>label` rows only when they hold values), `@` bars
/// scaled so the largest count is at most 50 wide, the count right-aligned
/// after the bars, runs of empty buckets folded into one `~` line where
/// every bucket within two of a row is empty, and a blank line at the end.
///
/// `hist` holds `kind.buckets()` counts, as [`Aggregate::hist`] gives them
/// (any other length is a caller's bug, and panics). A histogram with no
/// value is SystemTap's "empty aggregate" error, and
/// nothing is appended.
pub fn render_hist(kind: &HistKind, hist: &[u64], out: &mut String) -> Result<(), EmptyAggregate> {
    render_hist_eliding(kind, hist, HIST_ELISION, out)
}

/// [`render_hist`] with SystemTap's `HIST_ELISION` as a parameter: how many
/// empty buckets around a non-empty one stay shown (negative: all).
fn render_hist_eliding(
    kind: &HistKind,
    hist: &[u64],
    elision: i64,
    out: &mut String,
) -> Result<(), EmptyAggregate> {
    assert_eq!(
        hist.len(),
        kind.buckets(),
        "a histogram's counts match its kind"
    );
    let rows = Rows::of(kind, hist).ok_or(EmptyAggregate)?;
    let val_space = rows.value_width(kind);
    out.push_str(&format!(
        "{:>val_space$} |{} count\n",
        "value",
        "-".repeat(HIST_WIDTH as usize)
    ));
    let mut eliding = false;
    for i in rows.low..=rows.high {
        if elision >= 0 && rows.all_empty_near(hist, i, elision) {
            eliding = true;
            continue;
        }
        if eliding {
            out.push_str(&format!("{:val_space$} ~\n", ""));
            eliding = false;
        }
        let (prefix, value) = kind.label(i);
        let prefix_width = val_space.saturating_sub(digits(value));
        let bar = hist[i] / rows.scale;
        let count_width = (HIST_WIDTH - bar + 1) as usize + rows.count_width;
        out.push_str(&format!(
            "{prefix:>prefix_width$}{value} |{}{:>count_width$}\n",
            "@".repeat(bar as usize),
            hist[i]
        ));
    }
    out.push('\n');
    Ok(())
}

/// Which buckets a chart shows and how it scales them.
struct Rows {
    /// The first and last bucket shown.
    low: usize,
    high: usize,
    /// Whether the underflow and overflow rows of a linear histogram show.
    under: bool,
    over: bool,
    /// How many values one `@` stands for.
    scale: u64,
    /// How wide the largest count is.
    count_width: usize,
}

impl Rows {
    /// The rows of a histogram, or `None` when every bucket is empty.
    fn of(kind: &HistKind, hist: &[u64]) -> Option<Rows> {
        let mut low = hist.iter().position(|&c| c > 0)?;
        let mut high = hist.iter().rposition(|&c| c > 0)?;
        let largest = hist.iter().copied().max()?;
        let last = hist.len() - 1;
        for _ in 0..2 {
            let may_go_lower = match kind {
                HistKind::Log => low != LOG_BUCKET_ZERO,
                HistKind::Linear(_) => true,
            };
            if may_go_lower && low > 0 {
                low -= 1;
            }
            if high < last {
                high += 1;
            }
        }
        let (mut under, mut over) = (false, false);
        if let HistKind::Linear(_) = kind {
            if low == 0 && hist[0] == 0 {
                low = 1;
            }
            if high == last && hist[last] == 0 {
                high -= 1;
            }
            under = low == 0;
            over = high == last;
        }
        let scale = if largest <= HIST_WIDTH {
            1
        } else {
            largest.div_ceil(HIST_WIDTH)
        };
        let count_width = digits(i128::from(largest));
        Some(Rows {
            low,
            high,
            under,
            over,
            scale,
            count_width,
        })
    }

    /// The width of the value column. For a linear histogram SystemTap
    /// measures `lo` (plus the `<` if shown) and `lo + step · high` (plus
    /// the `>` if shown) — one step past the last row's label, which can
    /// make the column one wider than its labels; for a log histogram the
    /// first and last rows' labels. Never less than `value`'s 5.
    fn value_width(&self, kind: &HistKind) -> usize {
        let width = match *kind {
            HistKind::Linear(linear) => {
                let lo = i128::from(linear.lo);
                let past_high = lo + i128::from(linear.step) * self.high as i128;
                (digits(lo) + usize::from(self.under))
                    .max(digits(past_high) + usize::from(self.over))
            }
            HistKind::Log => digits(kind.label(self.low).1).max(digits(kind.label(self.high).1)),
        };
        width.max("value".len())
    }

    /// Whether row `i` is folded away: every bucket shown within `elision`
    /// of it is empty.
    fn all_empty_near(&self, hist: &[u64], i: usize, elision: i64) -> bool {
        let reach = usize::try_from(elision).unwrap_or(0).min(hist.len());
        let from = i.saturating_sub(reach).max(self.low);
        let to = (i + reach).min(self.high);
        hist[from..=to].iter().all(|&c| c == 0)
    }
}

/// How many characters a number takes in decimal, its `-` included.
fn digits(v: i128) -> usize {
    let sign = usize::from(v < 0);
    let mut magnitude = v.unsigned_abs();
    let mut n = 1;
    while magnitude >= 10 {
        magnitude /= 10;
        n += 1;
    }
    sign + n
}

#[cfg(test)]
mod tests;
