//! Starting a wider segmenter from a trained narrower one of the same depth
//! without losing what it learnt: every old channel keeps its weights, and
//! the weights that read a new channel start at zero, so the wider network
//! computes exactly the narrower one's output until training moves them
//! (Net2Net's function-preserving widening, Chen et al. 2016, with zeros
//! instead of copies). The new channels' own weights keep their random
//! initialisation, so they do not start identical.
//!
//! On these CPUs a segmenter trained from scratch at a new width never
//! caught up with the trained one in the epochs a session allows; grown
//! from it, the extra capacity only has to learn what the narrow one missed.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Tensor};

/// A channel axis as concatenated parts, each part (old count, new count):
/// a decoder block reads the upsampled deeper level and the skip, so its
/// inputs are two parts that each grew.
type Parts = Vec<(i64, i64)>;

/// The encoder widths a ResUNet or U-Net checkpoint was trained with, read
/// from its first convolutions' output channels; `None` when the file holds
/// no segmenter.
pub fn checkpoint_widths(tensors: &HashMap<String, Tensor>) -> Option<Vec<i64>> {
    let mut widths = Vec::new();
    while let Some(w) = tensors.get(&format!("enc.{}.c1.weight", widths.len())) {
        widths.push(w.size()[0]);
    }
    (!widths.is_empty()).then_some(widths)
}

/// A safetensors checkpoint's variables by name.
pub fn read_checkpoint(file: &Path) -> Result<HashMap<String, Tensor>> {
    Ok(Tensor::read_safetensors(file)
        .map_err(|e| Error::Data {
            path: file.to_path_buf(),
            reason: format!("cannot read it: {e}"),
        })?
        .into_iter()
        .collect())
}

/// Writes checkpoint `tensors` (read from `file`) into `vs`, whose segmenter
/// has encoder `widths`, each at least the checkpoint's at the same level.
/// Returns the checkpoint's widths.
pub fn widen_from(
    vs: &mut nn::VarStore,
    widths: &[i64],
    tensors: &HashMap<String, Tensor>,
    file: &Path,
) -> Result<Vec<i64>> {
    let bad = |reason: String| Error::Data {
        path: file.to_path_buf(),
        reason,
    };
    let old = checkpoint_widths(tensors)
        .ok_or_else(|| bad("holds no segmenter (no enc.0.c1.weight)".into()))?;
    if old.len() != widths.len() || old.iter().zip(widths).any(|(o, n)| o > n) {
        return Err(bad(format!(
            "a segmenter of widths {old:?} can only be widened, at the same depth, not made {widths:?}"
        )));
    }
    let mut variables = vs.variables();
    let mut missing: Vec<&String> = variables
        .keys()
        .filter(|name| !tensors.contains_key(*name))
        .collect();
    missing.sort();
    if let Some(first) = missing.first() {
        return Err(bad(format!(
            "lacks {} of the network's variables, e.g. {first}",
            missing.len()
        )));
    }
    tch::no_grad(|| -> Result<()> {
        for (name, var) in variables.iter_mut() {
            let from = &tensors[name];
            let (out, input) = channel_parts(name, &old, widths)
                .ok_or_else(|| bad(format!("{name}: not a variable of a segmenter")))?;
            copy_into(var, from, out, input.as_deref())
                .map_err(|reason| bad(format!("{name}: {reason}")))?;
        }
        Ok(())
    })?;
    Ok(old)
}

/// How `name`'s output axis (old count, new count) and, for convolutions,
/// its input axis grew.
fn channel_parts(name: &str, old: &[i64], new: &[i64]) -> Option<((i64, i64), Option<Parts>)> {
    let level = |i: usize| (old[i], new[i]);
    match name {
        // One logit from level 0's channels.
        "head.weight" => return Some(((1, 1), Some(vec![level(0)]))),
        "head.bias" => return Some(((1, 1), None)),
        _ => {}
    }
    let mut it = name.split('.');
    let (side, index, layer, kind) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let index: usize = index.parse().ok()?;
    let depth = old.len();
    let (out, block_in) = match side {
        "enc" if index < depth => {
            let input = if index == 0 {
                vec![(3, 3)]
            } else {
                vec![level(index - 1)]
            };
            (level(index), input)
        }
        // dec.j works at level depth-2-j on the deeper level's output
        // upsampled, then the skip: `cat([up, skip])`.
        "dec" if index + 1 < depth => {
            let at = depth - 2 - index;
            (level(at), vec![level(at + 1), level(at)])
        }
        _ => return None,
    };
    let input = match (layer, kind) {
        ("c1" | "sc", "weight") => Some(block_in),
        ("c2", "weight") => Some(vec![out]),
        ("b1" | "b2" | "bs", _) => None,
        _ => return None,
    };
    Some((out, input))
}

/// Copies `from` into the old channels of `var`; the inputs a kept output
/// reads from new channels are zeroed.
fn copy_into(
    var: &mut Tensor,
    from: &Tensor,
    (old_out, new_out): (i64, i64),
    input: Option<&[(i64, i64)]>,
) -> std::result::Result<(), String> {
    let want_old_in: i64 = input.map_or(0, |p| p.iter().map(|&(o, _)| o).sum());
    let want_new_in: i64 = input.map_or(0, |p| p.iter().map(|&(_, n)| n).sum());
    let (vs, fs) = (var.size(), from.size());
    let shapes_fit = vs[0] == new_out
        && fs[0] == old_out
        && vs.len() == fs.len()
        && match input {
            Some(_) => vs[1] == want_new_in && fs[1] == want_old_in && vs[2..] == fs[2..],
            None => vs.len() == 1,
        };
    if !shapes_fit {
        return Err(format!(
            "shape {fs:?} in the checkpoint does not fit {vs:?} by the widths"
        ));
    }
    let mut kept = var.narrow(0, 0, old_out);
    let Some(parts) = input else {
        kept.copy_(from);
        return Ok(());
    };
    let (mut at_old, mut at_new) = (0, 0);
    for &(o, n) in parts {
        kept.narrow(1, at_new, o).copy_(&from.narrow(1, at_old, o));
        if n > o {
            let _ = kept.narrow(1, at_new + o, n - o).zero_();
        }
        at_old += o;
        at_new += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::{SegNet, SegNetKind};
    use tch::{Device, Kind};

    fn trained_like(widths: &[i64], seed: i64) -> (nn::VarStore, SegNet) {
        trained_kind(SegNetKind::Residual, widths, seed)
    }

    fn trained_kind(kind: SegNetKind, widths: &[i64], seed: i64) -> (nn::VarStore, SegNet) {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = SegNet::new(&vs.root(), kind, widths);
        // Batch-norm statistics and affine terms away from their defaults,
        // as after training, so a misplaced copy shows in the output.
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                if name.contains(".b") {
                    let shift = Tensor::rand_like(&v) * 0.5 + 0.25;
                    let _ = v.g_add_(&shift);
                }
            }
        });
        (vs, net)
    }

    #[test]
    fn a_widened_segmenter_computes_what_the_narrow_one_did() {
        for kind in [SegNetKind::Residual, SegNetKind::Plain] {
            widened_output_agrees(kind);
        }
    }

    fn widened_output_agrees(kind: SegNetKind) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("narrow.safetensors");
        let (narrow_vs, narrow) = trained_kind(kind, &[4, 8, 12], 1);
        narrow_vs.save(&file).unwrap();
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let want = narrow.forward_t(&x, false);

        let widths = [6, 8, 20];
        let (mut wide_vs, wide) = trained_kind(kind, &widths, 2);
        let before = wide.forward_t(&x, false);
        assert!(
            (&before - &want).abs().max().double_value(&[]) > 1e-3,
            "{kind:?}: the fresh wide net must differ, or the test proves nothing"
        );
        let tensors = read_checkpoint(&file).unwrap();
        let old = widen_from(&mut wide_vs, &widths, &tensors, &file).unwrap();
        assert_eq!(old, [4, 8, 12]);
        let got = wide.forward_t(&x, false);
        let diff = (&got - &want).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{kind:?}: widened output differs by {diff}");
        // In training mode too (batch statistics of the old channels are
        // the old ones).
        let diff = (wide.forward_t(&x, true) - narrow.forward_t(&x, true))
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            diff < 1e-4,
            "{kind:?}: training-mode output differs by {diff}"
        );
    }

    #[test]
    fn narrowing_or_another_depth_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wide.safetensors");
        let (vs, _) = trained_like(&[8, 16, 32], 1);
        vs.save(&file).unwrap();
        for widths in [vec![8, 8, 32], vec![8, 16, 32, 64]] {
            let (mut other, _) = trained_like(&widths, 2);
            let tensors = read_checkpoint(&file).unwrap();
            let err = widen_from(&mut other, &widths, &tensors, &file)
                .unwrap_err()
                .to_string();
            assert!(err.contains("wide.safetensors"), "{err}");
            assert!(err.contains("only be widened"), "{err}");
        }
    }
}
