//! Evaluation figures, pictures and the written report for `neuroscreen-train eval`.
//!
//! Pure Rust over plain vectors (no tch), so every number here can be tested
//! without a model or a GPU:
//! - [`classification`]: the filter's per-slice decision (linfa metrics, ROC).
//! - [`segmentation`]: Dice / IoU summaries over slices, patients and lesion
//!   sizes, built on [`models::metrics`] so trainer and appliance agree.
//! - [`pipeline`]: the same summaries after the filter gates the segmenter,
//!   i.e. what the appliance would show.
//! - [`plots`] (curves, ROC, confusion matrix) and [`montage`] write PNGs.
//! - [`compare`]: patient-bootstrap intervals over eval-set's `slices.csv`,
//!   and the paired difference of two sets.
//! - [`misses`]: why the missed tumour slices of such a file were missed,
//!   by whom, and how the outlines err.
//! - [`markdown`] writes `report.md` naming how each number was computed.

pub mod classification;
pub mod compare;
pub mod markdown;
pub mod misses;
pub mod montage;
pub mod pipeline;
pub mod plots;
mod png;
pub mod segmentation;

pub use classification::{
    classification_metrics, ClassificationMetrics, ConfusionCounts, RocPoint,
};
pub use markdown::{render_report, write_report, ReportImages, ReportInputs};
pub use montage::{write_montage, MontageRow};
pub use pipeline::{gate_by_filter, summarise_pipeline, PipelineSlice, PipelineSummary};
pub use plots::{plot_confusion_matrix, plot_roc, plot_training_curves, EpochRecord};
pub use segmentation::{
    summarise_segmentation, LesionSize, PatientScore, PatientSummary, SegmentationSummary,
    SliceRecord, StratumSummary, LARGE_LESION_MIN_PX, SMALL_LESION_MAX_PX,
};
