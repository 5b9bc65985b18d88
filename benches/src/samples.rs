//! Quantiles of latency samples, one definition for every row and tool that reports them.

/// The `q`-quantile (0..=1) of sorted, non-empty samples, by nearest rank.
///
/// # Examples
///
/// ```
/// assert_eq!(benches::samples::quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
/// ```
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// The p50 and p99 of non-empty samples, sorting them first.
///
/// # Examples
///
/// ```
/// assert_eq!(benches::samples::p50_p99(vec![3.0, 1.0, 2.0]), (2.0, 3.0));
/// ```
pub fn p50_p99(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (quantile(&samples, 0.5), quantile(&samples, 0.99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        assert_eq!(p50_p99(vec![3.0, 1.0, 2.0]), (2.0, 3.0));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p50_p99(hundred), (51.0, 99.0));
    }
}
