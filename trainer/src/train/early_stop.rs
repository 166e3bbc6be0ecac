//! Early stopping on validation loss.

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    pub patience: u32,
    /// A new best must beat the old one by more than this.
    pub min_delta: f64,
    /// Infinite until an epoch gives a finite validation loss; JSON writes
    /// that as null, read back as infinite.
    #[serde(deserialize_with = "null_is_infinite")]
    pub best: f64,
    pub best_epoch: u32,
    pub epochs_since_best: u32,
}

/// serde_json writes a non-finite f64 as null; reading null back as
/// infinity keeps a run whose validation never gave a finite loss loadable.
pub fn null_is_infinite<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// As `null_is_infinite`, for losses: null (a NaN written out) reads as NaN.
pub fn null_is_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl EarlyStopping {
    pub fn new(patience: u32) -> Self {
        Self {
            patience,
            min_delta: 1e-4,
            best: f64::INFINITY,
            best_epoch: 0,
            epochs_since_best: 0,
        }
    }

    /// Records an epoch's validation loss; true when it is a new best.
    pub fn observe(&mut self, epoch: u32, val_loss: f64) -> bool {
        if val_loss < self.best - self.min_delta {
            self.best = val_loss;
            self.best_epoch = epoch;
            self.epochs_since_best = 0;
            true
        } else {
            self.epochs_since_best += 1;
            false
        }
    }

    pub fn should_stop(&self) -> bool {
        self.epochs_since_best >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_a_finite_loss_survives_json() {
        let mut es = EarlyStopping::new(3);
        es.observe(1, f64::NAN);
        let text = serde_json::to_string(&es).unwrap();
        assert!(text.contains("\"best\":null"), "{text}");
        let back: EarlyStopping = serde_json::from_str(&text).unwrap();
        assert_eq!(back.best, f64::INFINITY);
        assert_eq!(back.epochs_since_best, 1);
    }

    #[test]
    fn stops_after_patience_epochs_without_improvement() {
        let mut es = EarlyStopping::new(3);
        assert!(es.observe(1, 1.0));
        assert!(es.observe(2, 0.8));
        assert!(
            !es.observe(3, 0.80001),
            "within min_delta is no improvement"
        );
        assert!(!es.should_stop());
        assert!(!es.observe(4, 0.9));
        assert!(!es.should_stop());
        assert!(!es.observe(5, 0.85));
        assert!(es.should_stop());
        assert_eq!((es.best_epoch, es.best), (2, 0.8));
    }

    #[test]
    fn nan_loss_never_counts_as_best() {
        let mut es = EarlyStopping::new(1);
        assert!(!es.observe(1, f64::NAN));
        assert!(es.should_stop());
    }
}
