//! A bucketed summary of a set of values (weights, gradients, activations).
//!
//! The layout mirrors TensorBoard's `HistogramProto` so the TensorBoard sink can
//! write it without conversion: bucket `i` covers `(bucket_limits[i-1],
//! bucket_limits[i]]`, and TensorBoard replaces the outer edges by `min`/`max`.

/// Histogram statistics over the finite values of a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub min: f64,
    pub max: f64,
    /// Number of (finite) values summarised; f64 because that is the proto type.
    pub num: f64,
    pub sum: f64,
    pub sum_squares: f64,
    /// Right edge of each bucket, ascending; same length as `bucket_counts`.
    pub bucket_limits: Vec<f64>,
    pub bucket_counts: Vec<f64>,
}

impl Histogram {
    /// Builds a histogram with `buckets` equal-width buckets spanning
    /// `[min, max]` of the finite values (`buckets == 0` is treated as 1).
    ///
    /// Non-finite values are ignored: a single NaN gradient must not erase the
    /// picture of the other few million values. Returns `None` when nothing
    /// finite remains, since an empty histogram has no meaningful min/max.
    pub fn from_values(values: &[f32], buckets: usize) -> Option<Self> {
        Self::from_stream(|| values.iter().copied(), buckets)
    }

    /// [`Histogram::from_values`] over a stream that can be produced twice (one pass for the
    /// range, one for the counts), so huge inputs (a 10^8-block ledger) are never collected.
    pub fn from_stream<I: Iterator<Item = f32>>(
        values: impl Fn() -> I,
        buckets: usize,
    ) -> Option<Self> {
        let buckets = buckets.max(1);
        let (min, max, num, sum, sum_squares) = moments(values())?;
        let width = (max - min) / buckets as f64;
        let mut bucket_counts = vec![0.0; buckets];
        if width > 0.0 {
            for v in values().filter(|v| v.is_finite()) {
                let idx = ((f64::from(v) - min) / width) as usize;
                // `max` itself lands at idx == buckets; fold it into the last bucket.
                bucket_counts[idx.min(buckets - 1)] += 1.0;
            }
        } else {
            // All finite values are equal: everything goes into the last bucket,
            // whose right edge is that value.
            bucket_counts[buckets - 1] = num;
        }
        let bucket_limits = (1..=buckets)
            .map(|i| {
                if i == buckets {
                    max
                } else {
                    min + width * i as f64
                }
            })
            .collect();
        Some(Self {
            min,
            max,
            num,
            sum,
            sum_squares,
            bucket_limits,
            bucket_counts,
        })
    }

    /// Mean of the summarised values (NaN if `num == 0`, which `from_values`
    /// never produces).
    pub fn mean(&self) -> f64 {
        self.sum / self.num
    }

    /// Population standard deviation, clamped at 0 against rounding.
    pub fn std(&self) -> f64 {
        let mean = self.mean();
        (self.sum_squares / self.num - mean * mean).max(0.0).sqrt()
    }
}

/// (min, max, count, sum, sum of squares) over the finite values, in f64 so
/// that sums over millions of f32 weights do not lose precision.
fn moments(values: impl Iterator<Item = f32>) -> Option<(f64, f64, f64, f64, f64)> {
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    let (mut num, mut sum, mut sum_squares) = (0u64, 0.0f64, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        let v = f64::from(v);
        min = min.min(v);
        max = max.max(v);
        num += 1;
        sum += v;
        sum_squares += v * v;
    }
    (num > 0).then_some((min, max, num as f64, sum, sum_squares))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_all_nonfinite_give_none() {
        assert!(Histogram::from_values(&[], 10).is_none());
        assert!(Histogram::from_values(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY], 4).is_none());
    }

    #[test]
    fn counts_sum_to_num_and_ignore_nonfinite() {
        let values = [0.0, 1.0, 2.0, 3.0, f32::NAN, 4.0, f32::INFINITY];
        let h = Histogram::from_values(&values, 4).unwrap();
        assert_eq!(h.num, 5.0);
        assert_eq!(h.min, 0.0);
        assert_eq!(h.max, 4.0);
        assert_eq!(h.sum, 10.0);
        assert_eq!(h.sum_squares, 30.0);
        assert_eq!(h.bucket_limits, vec![1.0, 2.0, 3.0, 4.0]);
        // 0 -> b0, 1 -> b1, 2 -> b2, 3 -> b3, 4 (== max) -> b3
        assert_eq!(h.bucket_counts, vec![1.0, 1.0, 1.0, 2.0]);
        assert_eq!(h.bucket_counts.iter().sum::<f64>(), h.num);
        assert!((h.mean() - 2.0).abs() < 1e-12);
        assert!((h.std() - 2.0f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn constant_values_and_zero_buckets() {
        let h = Histogram::from_values(&[0.5; 7], 3).unwrap();
        assert_eq!(h.bucket_counts, vec![0.0, 0.0, 7.0]);
        assert_eq!(*h.bucket_limits.last().unwrap(), 0.5);
        assert_eq!(h.std(), 0.0);

        let h = Histogram::from_values(&[1.0, 2.0], 0).unwrap();
        assert_eq!(h.bucket_counts, vec![2.0]);
        assert_eq!(h.bucket_limits, vec![2.0]);
    }

    #[test]
    fn limits_are_ascending_and_match_counts() {
        let values: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.37).sin()).collect();
        let h = Histogram::from_values(&values, 30).unwrap();
        assert_eq!(h.bucket_limits.len(), 30);
        assert_eq!(h.bucket_counts.len(), 30);
        assert!(h.bucket_limits.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(h.bucket_counts.iter().sum::<f64>(), 1000.0);
    }
}
