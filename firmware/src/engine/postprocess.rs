//! From raw model outputs to probabilities, masks and the figures reported
//! for a slice.

use crate::engine::model::Output;
use models::manifest::{OutputKind, OutputSpec};

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A model output that does not fit what its manifest entry says of it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutputError {
    /// The filter's output does not hold one value per listed class.
    #[error(
        "output holds {values} values (shape {shape:?}), the manifest lists {} classes {classes:?}",
        .classes.len()
    )]
    ClassCount {
        values: usize,
        shape: Vec<usize>,
        classes: Vec<String>,
    },
    #[error("no 'tumour' class among {classes:?}")]
    NoTumourClass { classes: Vec<String> },
    #[error("tumour probability is {0}")]
    NotFinite(f32),
    /// The segmenter's output is not one plane of the input's size.
    #[error("output shape {shape:?} is not one {width}x{height} plane")]
    PlaneShape {
        shape: Vec<usize>,
        width: u32,
        height: u32,
    },
}

/// The filter's probability that the slice shows tumour. The tumour class is
/// found by name so a model trained with another class order still reads
/// right; one output value means a single tumour logit (sigmoid).
pub fn tumour_probability(output: &Output, spec: &OutputSpec) -> Result<f32, OutputError> {
    let n = output.values.len();
    if n != spec.classes.len() {
        return Err(OutputError::ClassCount {
            values: n,
            shape: output.shape.clone(),
            classes: spec.classes.clone(),
        });
    }
    let ix = spec
        .classes
        .iter()
        .position(|c| c == "tumour")
        .ok_or_else(|| OutputError::NoTumourClass {
            classes: spec.classes.clone(),
        })?;
    let v = &output.values;
    let p = match (spec.kind, n) {
        (OutputKind::Logits, 1) => sigmoid(v[0]),
        (OutputKind::Logits, _) => {
            // Subtracting the max keeps exp() finite for large logits.
            let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = v.iter().map(|x| (x - max).exp()).sum();
            (v[ix] - max).exp() / sum
        }
        (OutputKind::Probabilities, _) => v[ix].clamp(0.0, 1.0),
    };
    if p.is_finite() {
        Ok(p)
    } else {
        Err(OutputError::NotFinite(p))
    }
}

/// The segmenter's one-channel output as per-pixel probabilities on the model
/// input grid.
pub fn probability_plane(
    output: &Output,
    spec: &OutputSpec,
    width: u32,
    height: u32,
) -> Result<Vec<f32>, OutputError> {
    let expected = (width * height) as usize;
    if output.values.len() != expected {
        return Err(OutputError::PlaneShape {
            shape: output.shape.clone(),
            width,
            height,
        });
    }
    Ok(match spec.kind {
        OutputKind::Logits => output.values.iter().map(|&x| sigmoid(x)).collect(),
        OutputKind::Probabilities => output.values.iter().map(|&p| p.clamp(0.0, 1.0)).collect(),
    })
}

/// Clears every 8-connected component smaller than `min_px` pixels: isolated
/// specks are noise far more often than lesions at that size.
pub fn remove_small_components(mask: &mut [bool], width: u32, height: u32, min_px: usize) {
    models::components::clear_smaller_than(mask, width as usize, height as usize, min_px);
}

/// What the record says about a final mask.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskSummary {
    pub area_px: u64,
    /// x, y, width, height in source pixels; `None` for an empty mask.
    pub bbox: Option<[u32; 4]>,
    /// Mean probability inside the mask; `None` for an empty mask.
    pub confidence: Option<f32>,
}

pub fn summarise(mask: &[bool], probabilities: &[f32], width: u32) -> MaskSummary {
    assert_eq!(mask.len(), probabilities.len());
    let w = width as usize;
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    let (mut area, mut sum) = (0u64, 0f64);
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
        area += 1;
        sum += f64::from(probabilities[i]);
    }
    if area == 0 {
        return MaskSummary {
            area_px: 0,
            bbox: None,
            confidence: None,
        };
    }
    MaskSummary {
        area_px: area,
        bbox: Some([x0, y0, x1 - x0 + 1, y1 - y0 + 1].map(|v| v as u32)),
        confidence: Some((sum / area as f64) as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: OutputKind, classes: &[&str]) -> OutputSpec {
        OutputSpec {
            name: "out".into(),
            shape: vec![1, classes.len()],
            kind,
            classes: classes.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn out(values: &[f32]) -> Output {
        Output {
            shape: vec![1, values.len()],
            values: values.to_vec(),
        }
    }

    #[test]
    fn softmax_picks_the_tumour_class_by_name() {
        let p = tumour_probability(
            &out(&[0.0, 2.0]),
            &spec(OutputKind::Logits, &["clear", "tumour"]),
        )
        .unwrap();
        assert!((p - 0.880_797).abs() < 1e-5, "{p}");
        let swapped = tumour_probability(
            &out(&[0.0, 2.0]),
            &spec(OutputKind::Logits, &["tumour", "clear"]),
        )
        .unwrap();
        assert!((swapped - 0.119_203).abs() < 1e-5, "{swapped}");
        let huge = tumour_probability(
            &out(&[0.0, 1000.0]),
            &spec(OutputKind::Logits, &["clear", "tumour"]),
        )
        .unwrap();
        assert_eq!(huge, 1.0);
    }

    #[test]
    fn single_logit_is_a_sigmoid_and_probabilities_pass_through() {
        let p = tumour_probability(&out(&[0.0]), &spec(OutputKind::Logits, &["tumour"])).unwrap();
        assert_eq!(p, 0.5);
        let q = tumour_probability(
            &out(&[0.2, 0.8]),
            &spec(OutputKind::Probabilities, &["clear", "tumour"]),
        )
        .unwrap();
        assert_eq!(q, 0.8);
    }

    #[test]
    fn output_not_matching_the_classes_is_an_error() {
        let e = tumour_probability(
            &out(&[0.1, 0.2, 0.3]),
            &spec(OutputKind::Logits, &["clear", "tumour"]),
        )
        .unwrap_err();
        assert!(
            matches!(&e, OutputError::ClassCount { values: 3, classes, .. } if classes.len() == 2),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("3 values"), "{e}");
        let e = tumour_probability(&out(&[0.1, 0.2]), &spec(OutputKind::Logits, &["a", "b"]))
            .unwrap_err();
        assert!(matches!(e, OutputError::NoTumourClass { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("no 'tumour' class"), "{e}");
    }

    #[test]
    fn segmenter_plane_must_match_the_input_grid() {
        let s = spec(OutputKind::Logits, &["tumour"]);
        let o = Output {
            shape: vec![1, 1, 2, 2],
            values: vec![0.0, 10.0, -10.0, 0.0],
        };
        let p = probability_plane(&o, &s, 2, 2).unwrap();
        assert_eq!(p[0], 0.5);
        assert!(p[1] > 0.999 && p[2] < 0.001);
        assert_eq!(
            probability_plane(&o, &s, 3, 2),
            Err(OutputError::PlaneShape {
                shape: vec![1, 1, 2, 2],
                width: 3,
                height: 2
            })
        );
    }

    #[test]
    fn small_components_go_and_diagonal_neighbours_count_as_connected() {
        // 6x4: a 3-pixel diagonal chain (one 8-connected component) and a
        // 2-pixel speck.
        #[rustfmt::skip]
        let grid = [
            1, 0, 0, 0, 0, 0,
            0, 1, 0, 0, 1, 1,
            0, 0, 1, 0, 0, 0,
            0, 0, 0, 0, 0, 0,
        ];
        let mut mask: Vec<bool> = grid.iter().map(|&v| v == 1).collect();
        remove_small_components(&mut mask, 6, 4, 3);
        let kept: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
        assert_eq!(kept, [0, 7, 14]);
        remove_small_components(&mut mask, 6, 4, 4);
        assert!(mask.iter().all(|m| !m));
    }

    #[test]
    fn zero_threshold_keeps_everything() {
        let mut mask = vec![true, false, false, true];
        remove_small_components(&mut mask, 4, 1, 0);
        assert_eq!(mask, [true, false, false, true]);
    }

    #[test]
    fn summary_of_a_mask() {
        let mask = [false, true, true, false, false, true];
        let prob = [0.1, 0.9, 0.7, 0.2, 0.3, 0.8];
        let s = summarise(&mask, &prob, 3);
        assert_eq!(s.area_px, 3);
        assert_eq!(s.bbox, Some([1, 0, 2, 2]));
        assert!((s.confidence.unwrap() - 0.8).abs() < 1e-6);
        let empty = summarise(&[false; 6], &prob, 3);
        assert_eq!(
            (empty.area_px, empty.bbox, empty.confidence),
            (0, None, None)
        );
    }
}
