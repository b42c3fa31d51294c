//! Tests of the statistics: buckets against hand-worked values and
//! SystemTap's own bucket numbers, merging and the extractors against hand
//! computations and SystemTap's test suite, and the chart byte for byte
//! against outputs that SystemTap's test suite and manual print (the
//! files under tests/data/stats/, whose README says where each came from).

use super::*;

/// A file of tests/data/stats/, by name.
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/data/stats/", $name, ".txt"))
    };
}

/// What a script's BPF code does for `s <<< v` on one CPU's value.
fn add_value(words: &mut [u64], kind: Option<&HistKind>, v: i64) {
    if words[WORD_COUNT] == 0 {
        words[WORD_MIN] = v as u64;
        words[WORD_MAX] = v as u64;
    } else {
        words[WORD_MIN] = (words[WORD_MIN] as i64).min(v) as u64;
        words[WORD_MAX] = (words[WORD_MAX] as i64).max(v) as u64;
    }
    words[WORD_COUNT] += 1;
    words[WORD_SUM] = words[WORD_SUM].wrapping_add(v as u64);
    words[WORD_SUMSQ] = words[WORD_SUMSQ].wrapping_add((v as u64).wrapping_mul(v as u64));
    if let Some(kind) = kind {
        words[WORD_HIST + kind.bucket(v)] += 1;
    }
}

/// The bytes of one CPU's value.
fn bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

/// The aggregate of `values` added round-robin on `cpus` CPUs, each
/// starting from garbage min and max under a count of 0, as a map's
/// recycled entry may hold.
fn aggregate(kind: Option<&HistKind>, values: &[i64], cpus: usize) -> Aggregate {
    let words = value_size(kind) / 8;
    let mut per_cpu = vec![vec![0u64; words]; cpus];
    for cpu in &mut per_cpu {
        cpu[WORD_MIN] = -12345i64 as u64;
        cpu[WORD_MAX] = 12345;
    }
    for (i, &v) in values.iter().enumerate() {
        add_value(&mut per_cpu[i % cpus], kind, v);
    }
    let values: Vec<Vec<u8>> = per_cpu.iter().map(|w| bytes(w)).collect();
    let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    Aggregate::merge_cpus(&slices, kind).expect("values of the layout's size")
}

/// The chart of `values` in a histogram of `kind`, with `elision`.
fn chart(kind: &HistKind, values: &[i64], elision: i64) -> String {
    let agg = aggregate(Some(kind), values, 2);
    let mut out = String::new();
    render_hist_eliding(kind, agg.hist(), elision, &mut out).expect("a histogram with values");
    out
}

/// A line-by-line diff, so that a failing comparison shows where.
fn assert_text(actual: &str, expected: &str, what: &str) {
    if actual != expected {
        for (n, (a, e)) in actual.split('\n').zip(expected.split('\n')).enumerate() {
            assert_eq!(a, e, "{what}: line {} differs", n + 1);
        }
        assert_eq!(actual, expected, "{what}: lengths differ");
    }
}

#[test]
fn log_buckets_of_hand_worked_values() {
    let cases = [
        (0, 64),
        (1, 65),
        (2, 66),
        (3, 66),
        (4, 67),
        (7, 67),
        (8, 68),
        (128, 72),
        (i64::MAX, 127),
        (-1, 63),
        (-2, 62),
        (-3, 62),
        (-4, 61),
        (-4096, 51),
        (i64::MIN + 1, 1),
        (i64::MIN, 0),
    ];
    for (v, bucket) in cases {
        assert_eq!(HistKind::Log.bucket(v), bucket, "bucket of {v}");
    }
}

#[test]
fn log_buckets_cover_each_power_of_two() {
    for k in 0..63 {
        let (first, last) = (1i64 << k, ((1i128 << (k + 1)) - 1) as i64);
        for v in [first, last] {
            assert_eq!(HistKind::Log.bucket(v), 65 + k, "bucket of {v}");
            assert_eq!(HistKind::Log.bucket(-v), 63 - k, "bucket of {}", -v);
        }
        assert_eq!(
            log_bucket_value(65 + k),
            first,
            "label of bucket {}",
            65 + k
        );
        assert_eq!(
            log_bucket_value(63 - k),
            -first,
            "label of bucket {}",
            63 - k
        );
    }
    assert_eq!(log_bucket_value(0), i64::MIN);
    assert_eq!(log_bucket_value(64), 0);
}

/// SystemTap's testsuite/systemtap.maps/log_edge.exp prints the bucket
/// numbers that `foreach (b in @hist_log(foo))` sees.
#[test]
fn log_bucket_numbers_are_systemtaps() {
    let kind = HistKind::Log;
    let agg = aggregate(Some(&kind), &[1, 2, 3, 4], 1);
    let used: Vec<(usize, u64)> = agg
        .hist()
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, c)| c > 0)
        .collect();
    assert_eq!(used, [(65, 1), (66, 2), (67, 1)]);
    assert_eq!(
        [-1, 0, 1, 0x7fff_ffff_ffff_ffff].map(|v| kind.bucket(v)),
        [63, 64, 65, 127]
    );
}

#[test]
fn linear_buckets_at_their_edges() {
    let kind = HistKind::linear(0, 100, 10).expect("valid");
    assert_eq!(kind.buckets(), 13);
    let cases = [
        (i64::MIN, 0),
        (-1, 0),
        (0, 1),
        (9, 1),
        (10, 2),
        (99, 10),
        (100, 11),
        (109, 11),
        (110, 12),
        (i64::MAX, 12),
    ];
    for (v, bucket) in cases {
        assert_eq!(kind.bucket(v), bucket, "bucket of {v}");
    }
}

#[test]
fn linear_high_end_not_a_multiple_of_the_step() {
    // 0, 3, 6 and 9: the last bucket holds 10 and 11 too.
    let kind = HistKind::linear(0, 10, 3).expect("valid");
    assert_eq!(kind.buckets(), 6);
    assert_eq!([8, 9, 10, 11, 12].map(|v| kind.bucket(v)), [3, 4, 4, 4, 5]);
}

#[test]
fn linear_buckets_with_negative_ends_and_huge_distances() {
    let kind = HistKind::linear(-100, 100, 10).expect("valid");
    assert_eq!(
        [-101, -100, -91, -10, -1, 0, 100, 110].map(|v| kind.bucket(v)),
        [0, 1, 1, 10, 10, 11, 21, 22]
    );
    // v - lo does not fit an i64 here, and (v - lo) / step + 1 not a u64.
    let kind = HistKind::linear(i64::MIN, i64::MIN + 5, 1).expect("valid");
    assert_eq!(kind.bucket(i64::MAX), kind.buckets() - 1);
    assert_eq!(kind.bucket(i64::MIN + 5), kind.buckets() - 2);
    let kind = HistKind::linear(-10, 10, 1).expect("valid");
    assert_eq!(kind.bucket(i64::MAX), kind.buckets() - 1);
}

#[test]
fn linear_parameters_checked_as_systemtap_does() {
    assert_eq!(HistKind::linear(0, 1500, 0), Err(StatsError::ZeroStep));
    assert_eq!(
        HistKind::linear(0, 1500, 0).unwrap_err().to_string(),
        "@hist_linear: the step (interval) cannot be zero"
    );
    assert_eq!(
        HistKind::linear(0, 1500, -1).unwrap_err().to_string(),
        "@hist_linear: the step (interval) must be positive, not -1"
    );
    // testsuite/systemtap.maps/linear_bad.stp: too many buckets.
    assert_eq!(
        HistKind::linear(0, 1500, 2).unwrap_err().to_string(),
        "@hist_linear: the number of buckets, (high - low) / step + 1 = (1500 - 0) / 2 + 1 = 751, \
         must be between 1 and 126; adjust the low, high and step values"
    );
    assert!(HistKind::linear(0, 125, 1).is_ok());
    assert!(matches!(
        HistKind::linear(0, 126, 1),
        Err(StatsError::BucketCount { buckets: 127, .. })
    ));
    // hist_in_string.stp: one bucket when low and high are equal.
    assert_eq!(HistKind::linear(0, 0, 1).map(|k| k.buckets()), Ok(3));
    // SystemTap's division truncates toward zero: a high end less than a
    // step below the low end still makes one bucket; further is refused.
    assert_eq!(HistKind::linear(10, 5, 10).map(|k| k.buckets()), Ok(3));
    assert!(matches!(
        HistKind::linear(10, 0, 5),
        Err(StatsError::BucketCount { buckets: -1, .. })
    ));
    assert!(HistKind::linear(i64::MIN, i64::MAX, 1).is_err());
}

#[test]
fn variance_shift_range() {
    assert_eq!(check_variance_shift(0), Ok(()));
    assert_eq!(check_variance_shift(62), Ok(()));
    assert_eq!(
        check_variance_shift(63).unwrap_err().to_string(),
        "@variance: bit shift (63) out of range <0..62>"
    );
    assert!(check_variance_shift(-1).is_err());
}

#[test]
fn value_sizes() {
    assert_eq!(value_size(None), 40);
    assert_eq!(value_size(Some(&HistKind::Log)), 40 + 128 * 8);
    let kind = HistKind::linear(0, 1500, 50).expect("valid");
    assert_eq!(value_size(Some(&kind)), 40 + 33 * 8);
}

#[test]
fn merge_skips_the_min_and_max_of_idle_cpus() {
    let kind = HistKind::Log;
    let mut busy = vec![0u64; value_size(Some(&kind)) / 8];
    for v in [5, -3, 40] {
        add_value(&mut busy, Some(&kind), v);
    }
    let mut other = vec![0u64; busy.len()];
    add_value(&mut other, Some(&kind), 7);
    let mut idle = vec![0u64; busy.len()];
    idle[WORD_MIN] = -1_000_000i64 as u64;
    idle[WORD_MAX] = 1_000_000;
    let (busy, other, idle) = (bytes(&busy), bytes(&other), bytes(&idle));
    let agg = Aggregate::merge_cpus(&[&idle, &busy, &idle, &other], Some(&kind)).expect("merged");
    assert_eq!(
        (agg.count(), agg.sum(), agg.min(), agg.max()),
        (4, 49, Ok(-3), Ok(40))
    );
    assert_eq!(agg.sumsq, 25 + 9 + 1600 + 49);
    assert_eq!(agg.hist()[kind.bucket(5)], 2, "5 and 7 share bucket 67");
    assert_eq!(agg.hist().iter().sum::<u64>(), 4);
}

#[test]
fn merge_refuses_a_value_of_the_wrong_size() {
    let short = vec![0u8; 40];
    let err = Aggregate::merge_cpus(&[&short, &short[..32]], None).unwrap_err();
    assert_eq!(
        err,
        StatsError::ValueSize {
            cpu: 1,
            expected: 40,
            actual: 32
        }
    );
    assert_eq!(
        err.to_string(),
        "statistic value of CPU 1 is 32 bytes; its layout has 40"
    );
    assert!(Aggregate::merge_cpus(&[&short], Some(&HistKind::Log)).is_err());
}

#[test]
fn empty_aggregate() {
    let idle = vec![0u8; value_size(None)];
    let agg = Aggregate::merge_cpus(&[&idle, &idle], None).expect("merged");
    assert!(agg.is_empty());
    assert_eq!((agg.count(), agg.sum()), (0, 0));
    assert_eq!(agg.min(), Err(EmptyAggregate));
    assert_eq!(agg.max(), Err(EmptyAggregate));
    assert_eq!(agg.avg(), Err(EmptyAggregate));
    assert_eq!(agg.variance(), Err(EmptyAggregate));
    assert_eq!(EmptyAggregate.to_string(), "empty aggregate");
    let agg = Aggregate::merge_cpus(&[], None).expect("merged");
    assert!(agg.is_empty());
}

#[test]
fn avg_truncates_toward_zero() {
    assert_eq!(aggregate(None, &[1, 2], 2).avg(), Ok(1));
    assert_eq!(aggregate(None, &[-1, -2], 2).avg(), Ok(-1));
    assert_eq!(aggregate(None, &[-7], 1).avg(), Ok(-7));
    assert_eq!(
        aggregate(None, &[i64::MAX, 1], 2).sum(),
        i64::MIN,
        "the sum wraps"
    );
}

#[test]
fn variance_by_hand() {
    // 1..5: mean 3, squares of deviations 4+1+0+1+4 = 10, 10/4 = 2.5.
    // SystemTap's manual prints 12 for this at bit shift 0 and 2 at 1.
    assert_eq!(aggregate(None, &[1, 2, 3, 4, 5], 3).variance(), Ok(2));
    // 2, 4, 4, 4, 5, 5, 7, 9: deviations' squares sum to 32, 32/7 = 4.57.
    assert_eq!(
        aggregate(None, &[2, 4, 4, 4, 5, 5, 7, 9], 4).variance(),
        Ok(4)
    );
    assert_eq!(aggregate(None, &[-10, 10], 2).variance(), Ok(200));
    assert_eq!(aggregate(None, &[42], 1).variance(), Ok(0));
    assert_eq!(aggregate(None, &[7, 7, 7], 2).variance(), Ok(0));
    // v and -v: variance 2v², exact while it fits in 64 bits, even
    // though Σv² = 2v² passed i64::MAX on the way.
    let v = 2_000_000_000i64;
    assert_eq!(aggregate(None, &[v, -v], 2).variance(), Ok(2 * v * v));
    // The fraction of the mean is kept: 444 and 999 have variance
    // 154012.5 (what SystemTap's testsuite prints, truncated).
    assert_eq!(aggregate(None, &[444, 999], 2).variance(), Ok(154012));
    // A variance past i64::MAX wraps, as every sum does; no panic.
    let _ = aggregate(None, &[i64::MAX, i64::MIN, 0], 2).variance();
    let _ = aggregate(None, &[3_000_000_000, -3_000_000_000], 2).variance();
}

/// count, sum, min, max and avg that SystemTap's testsuite/systemtap.maps
/// prints for the values of linear_large.stp and linear_large_neg.stp,
/// and the variance of linear_nearlyempty.stp (`@variance(agg, 7)`, where
/// SystemTap's rounding happens to give the exact 154012).
#[test]
fn extractors_as_systemtaps_testsuite_prints_them() {
    let agg = aggregate(None, &large(), 2);
    assert_eq!(
        (agg.count(), agg.sum(), agg.min(), agg.max(), agg.avg()),
        (
            15,
            16730000000,
            Ok(10000000),
            Ok(10000000000),
            Ok(1115333333)
        )
    );
    let agg = aggregate(None, &large_neg(), 3);
    assert_eq!(
        (agg.count(), agg.sum(), agg.min(), agg.max(), agg.avg()),
        (13, -16700000000, Ok(-10000000000), Ok(0), Ok(-1284615384))
    );
    let agg = aggregate(None, &[444, 999], 1);
    assert_eq!((agg.avg(), agg.variance()), (Ok(721), Ok(154012)));
    let agg = aggregate(None, &linear_values(), 2);
    assert_eq!(
        (agg.count(), agg.sum(), agg.min(), agg.max(), agg.avg()),
        (1600, 653400, Ok(0), Ok(1485), Ok(408))
    );
}

/// The values of linear_large.stp.
fn large() -> Vec<i64> {
    let mut values = vec![10000000; 3];
    values.extend([100000000; 2]);
    values.extend([500000000; 5]);
    values.extend([1000000000; 4]);
    values.push(10000000000);
    values
}

/// The values of linear_large_neg.stp.
fn large_neg() -> Vec<i64> {
    let mut values = vec![0, -100000000, -100000000];
    values.extend([-500000000; 5]);
    values.extend([-1000000000; 4]);
    values.push(-10000000000);
    values
}

/// The values of linear.stp and linear_overunder.stp: each key below 100
/// times 1 to 15, and 12 twice.
fn linear_values() -> Vec<i64> {
    let factors = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 13, 14, 15];
    (0..100).flat_map(|key| factors.map(|f| key * f)).collect()
}

#[test]
fn an_empty_histogram_prints_nothing() {
    let kind = HistKind::linear(0, 1500, 50).expect("valid");
    let mut out = String::from("before\n");
    assert_eq!(
        render_hist(&kind, &vec![0; kind.buckets()], &mut out),
        Err(EmptyAggregate)
    );
    assert_eq!(out, "before\n");
}

/// testsuite/systemtap.maps/elision.stp's eleven histograms, under each
/// `-DHIST_ELISION` its .exp file gives the output of.
#[test]
fn elision_as_systemtap_elides() {
    let linear = HistKind::linear(0, 1500, 50).expect("valid");
    let around_zero = HistKind::linear(-100, 100, 10).expect("valid");
    let cases: [(HistKind, &[i64]); 11] = [
        (linear, &[444, 999]),
        (linear, &[444, 500]),
        (linear, &[0]),
        (linear, &[50]),
        (linear, &[1450]),
        (linear, &[1500]),
        (around_zero, &[-10]),
        (around_zero, &[0]),
        (HistKind::Log, &[128]),
        (HistKind::Log, &[0]),
        (HistKind::Log, &[-2, -4096]),
    ];
    let expected = [
        (-1, fixture!("elision_minus1")),
        (0, fixture!("elision_0")),
        (1, fixture!("elision_1")),
        (2, fixture!("elision_2")),
        (3, fixture!("elision_3")),
    ];
    for (elision, expected) in expected {
        let text: String = cases
            .iter()
            .map(|(kind, values)| chart(kind, values, elision))
            .collect();
        assert_text(&text, expected, &format!("HIST_ELISION={elision}"));
    }
    let mut default = String::new();
    for (kind, values) in &cases {
        let agg = aggregate(Some(kind), values, 1);
        render_hist(kind, agg.hist(), &mut default).expect("rendered");
    }
    assert_text(&default, expected[3].1, "render_hist");
}

/// log.stp: every power of two, positive and negative, and twenty zeros:
/// a value column 20 wide for `i64::MIN`.
#[test]
fn log_histogram_of_the_whole_range() {
    let mut values: Vec<i64> = (0..63).map(|k| 1 << k).collect();
    values.extend((0..64).map(|k| (1i64 << k).wrapping_neg()));
    values.extend([0; 20]);
    let text = chart(&HistKind::Log, &values, HIST_ELISION);
    assert_text(&text, fixture!("log"), "log.stp");
}

/// log_edge.stp's four histograms.
#[test]
fn log_histogram_edges() {
    let cases: [&[i64]; 4] = [&[-1, 1], &[0], &[i64::MAX], &[1, 2, 3, 4]];
    let text: String = cases
        .iter()
        .map(|values| chart(&HistKind::Log, values, HIST_ELISION))
        .collect();
    assert_text(&text, fixture!("log_edge"), "log_edge.stp");
}

/// linear.stp, linear_overunder.stp, linear_over.stp, linear_under.stp,
/// linear_large.stp, linear_large_neg.stp, linear_nearlyempty.stp and
/// hist_in_string.stp: scaled bars, the `<lo` and `>label` rows, counts
/// wider than the bars' slack, and value columns wider than `value`.
#[test]
fn linear_histograms() {
    let cases = [
        ((0, 1500, 50), linear_values(), fixture!("linear")),
        (
            (250, 1000, 50),
            linear_values(),
            fixture!("linear_overunder"),
        ),
        (
            (0, 100, 10),
            (1000..10000).collect(),
            fixture!("linear_over"),
        ),
        (
            (1800, 2500, 100),
            (0..100).collect(),
            fixture!("linear_under"),
        ),
        (
            (0, 1000000000, 100000000),
            large(),
            fixture!("linear_large"),
        ),
        (
            (-1000000000, 0, 100000000),
            large_neg(),
            fixture!("linear_large_neg"),
        ),
        (
            (0, 1500, 50),
            vec![444, 999],
            fixture!("linear_nearlyempty"),
        ),
        ((0, 0, 1), vec![0; 128], fixture!("hist_in_string")),
    ];
    for ((lo, hi, step), values, expected) in cases {
        let kind = HistKind::linear(lo, hi, step).expect("valid");
        let name = format!("@hist_linear(s, {lo}, {hi}, {step})");
        assert_text(&chart(&kind, &values, HIST_ELISION), expected, &name);
    }
}

/// The `@hist_linear` example of SystemTap's language reference
/// (doc/langref.tex, "Histogram extractors"), rendered from the bucket
/// counts it shows. (Its `@hist_log` example, written in 2008, has a count
/// column one narrower than its 5-digit count makes the runtime print.)
#[test]
fn language_reference_example() {
    let kind = HistKind::linear(0, 10240, 200).expect("valid");
    let mut hist = vec![0; kind.buckets()];
    for (v, count) in [(0, 1650), (200, 8), (1400, 1)] {
        hist[kind.bucket(v)] = count;
    }
    let mut text = String::new();
    render_hist(&kind, &hist, &mut text).expect("rendered");
    let expected = "\
value |-------------------------------------------------- count
    0 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1650
  200 |                                                      8
  400 |                                                      0
  600 |                                                      0
      ~
 1000 |                                                      0
 1200 |                                                      0
 1400 |                                                      1
 1600 |                                                      0
 1800 |                                                      0

";
    assert_text(&text, expected, "langref @hist_linear");
}

#[test]
fn digits_of_extremes() {
    assert_eq!(digits(0), 1);
    assert_eq!(digits(-1), 2);
    assert_eq!(digits(9), 1);
    assert_eq!(digits(10), 2);
    assert_eq!(digits(i128::from(i64::MIN)), 20);
    assert_eq!(digits(i128::from(u64::MAX)), 20);
}

/// The value column of a linear chart is measured one step past its last
/// row (`start + interval * high_bucket` in `_stp_stat_print_histogram_buf`),
/// so a last label of 900000 gets a column as wide as 1000000.
#[test]
fn linear_value_column_measured_one_step_past_the_last_row() {
    let kind = HistKind::linear(0, 1000000, 100000).expect("valid");
    let text = chart(&kind, &[700000], HIST_ELISION);
    let expected = "  value |-------------------------------------------------- count
 500000 |                                                   0
 600000 |                                                   0
 700000 |@                                                  1
 800000 |                                                   0
 900000 |                                                   0

";
    assert_text(&text, expected, "one step past");
}
