//! Percentiles for the latency report.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub mean: f64,
    pub max: f64,
}

/// Nearest-rank percentiles (a value that was measured, never one between
/// two); `None` for no values.
pub fn summarise(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Summary {
        n: v.len(),
        p50: rank(0.50),
        p95: rank(0.95),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        max: v[v.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = summarise(&v).unwrap();
        assert_eq!((s.n, s.p50, s.p95, s.max), (20, 10.0, 19.0, 20.0));
        assert_eq!(s.mean, 10.5);
        let one = summarise(&[3.0]).unwrap();
        assert_eq!((one.p50, one.p95), (3.0, 3.0));
        assert!(summarise(&[]).is_none());
    }
}
