//! The data set in memory at model resolution, and augmented batches
//! assembled on worker threads so the accelerator is not kept waiting.

use crate::data::augment::Augmentation;
use crate::data::lgg::{LggIndex, Problem, Sample};
use crate::data::source::DataSource;
use crate::data::split::{split_patients, PatientSummary, Split, SplitFractions};
use crate::Result;
use models::{preprocess, Preprocessing};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

/// Slices mapped to the model input with the shared preprocessing.
#[derive(Debug, Default, Clone)]
pub struct Prepared {
    pub size: u32,
    /// N x 3 x size x size, model units.
    pub images: Vec<f32>,
    /// N x size x size, 0/1 at model resolution.
    pub masks: Vec<u8>,
    pub patients: Vec<String>,
    /// Slice has tumour (its source mask is not empty).
    pub labels: Vec<bool>,
    /// Tumour pixels in the source mask (lesion-size strata use these).
    pub true_area: Vec<usize>,
    /// Index of each slice's data source in [`DataSplit::sources`].
    pub sources: Vec<u16>,
}

impl Prepared {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn plane(&self) -> usize {
        (self.size * self.size) as usize
    }

    pub fn image(&self, i: usize) -> &[f32] {
        let n = 3 * self.plane();
        &self.images[i * n..(i + 1) * n]
    }

    pub fn mask(&self, i: usize) -> &[u8] {
        let n = self.plane();
        &self.masks[i * n..(i + 1) * n]
    }

    /// The slices at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Prepared {
        let mut out = Prepared {
            size: self.size,
            ..Default::default()
        };
        for &i in indices {
            out.images.extend_from_slice(self.image(i));
            out.masks.extend_from_slice(self.mask(i));
            out.patients.push(self.patients[i].clone());
            out.labels.push(self.labels[i]);
            out.true_area.push(self.true_area[i]);
            out.sources.push(self.source(i));
        }
        out
    }

    /// Only the slices of source `source`.
    pub fn of_source(&self, source: u16) -> Prepared {
        let idx: Vec<usize> = (0..self.len())
            .filter(|&i| self.source(i) == source)
            .collect();
        self.subset(&idx)
    }

    /// Every slice as the grey slice of one of its channels would arrive:
    /// that channel in all three (what the appliance makes of a grey slice,
    /// since each channel is normalised on its own).
    pub fn single_channel(&self, channel: usize) -> Prepared {
        assert!(channel < 3, "channel {channel} of 3");
        let mut out = self.clone();
        let n = self.plane();
        for img in out.images.chunks_exact_mut(3 * n) {
            let src = img[channel * n..(channel + 1) * n].to_vec();
            for plane in img.chunks_exact_mut(n) {
                plane.copy_from_slice(&src);
            }
        }
        out
    }

    /// Slice `i`'s source (0 where the part was built without sources).
    pub fn source(&self, i: usize) -> u16 {
        self.sources.get(i).copied().unwrap_or(0)
    }

    /// Only the slices whose mask is not empty.
    pub fn tumour_only(&self) -> Prepared {
        let idx: Vec<usize> = (0..self.len()).filter(|&i| self.labels[i]).collect();
        self.subset(&idx)
    }

    fn push(
        &mut self,
        sample: &Sample,
        pp: &Preprocessing,
        source: u16,
        patient: String,
    ) -> Result<()> {
        let input = preprocess::prepare(&sample.image, pp, self.size, self.size)?;
        let mask_f: Vec<f32> = sample.mask.iter().map(|&m| f32::from(m)).collect();
        let mask = input.geometry.to_input(&mask_f);
        self.images.extend_from_slice(&input.data);
        self.masks.extend(mask.iter().map(|&v| u8::from(v >= 0.5)));
        self.patients.push(patient);
        let area = sample.tumour_pixels();
        self.labels.push(area > 0);
        self.true_area.push(area);
        self.sources.push(source);
        Ok(())
    }
}

/// Train / validation / test parts, split by patient.
#[derive(Debug, Default)]
pub struct DataSplit {
    pub split: Split,
    pub train: Prepared,
    pub val: Prepared,
    pub test: Prepared,
    /// Files that could not be used, with the reason.
    pub problems: Vec<Problem>,
    /// The sources in the order `Prepared::sources` indexes them.
    pub sources: Vec<DataSource>,
    /// Per source: what was read and skipped.
    pub source_reports: Vec<SourceReport>,
}

impl DataSplit {
    /// Each of `patients` (names from this split) as its source's folder
    /// and its id there. Runs name patients `<source>/<id>` only when they
    /// have several sources, and two runs may name one folder differently,
    /// so a patient is the same person in two runs when its folder and id
    /// are: what a leak check between runs must compare.
    pub fn patients_by_folder(&self, patients: &[String]) -> BTreeSet<(PathBuf, String)> {
        // Once per source, not per patient: canonicalising reads the disk.
        let folders: Vec<PathBuf> = self
            .sources
            .iter()
            .map(|s| std::fs::canonicalize(&s.path).unwrap_or(s.path.clone()))
            .collect();
        patients
            .iter()
            .filter_map(|p| {
                let (k, id) = match self.sources.as_slice() {
                    [_] => (0, p.as_str()),
                    several => {
                        let (name, id) = p.split_once('/')?;
                        (several.iter().position(|s| s.name == name)?, id)
                    }
                };
                Some((folders[k].clone(), id.to_string()))
            })
            .collect()
    }
}

/// The patients of `held_out` also in `seen` (both from
/// [`DataSplit::patients_by_folder`]): the same id in the same folder, or
/// in folders one inside the other (the reader walks a folder's subfolders,
/// so one run may name the LGG root and another its `kaggle_3m`).
pub fn shared_patients<'a>(
    held_out: &'a BTreeSet<(PathBuf, String)>,
    seen: &BTreeSet<(PathBuf, String)>,
) -> Vec<&'a (PathBuf, String)> {
    held_out
        .iter()
        .filter(|(dir, id)| {
            seen.iter()
                .any(|(d, i)| i == id && (d.starts_with(dir) || dir.starts_with(d)))
        })
        .collect()
}

/// What one source gave: slices and patients read, tumour slices, files
/// skipped (named in `DataSplit::problems`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceReport {
    pub name: String,
    pub slices: usize,
    pub tumour_slices: usize,
    pub patients: usize,
    pub skipped: usize,
    /// Patients in train / validation / test.
    pub split: [usize; 3],
    /// Coronal and sagittal cuts added to the training part.
    pub resliced: usize,
}

impl std::fmt::Display for SourceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} slices ({} with tumour) of {} patients, {} files skipped; patients {} train / {} val / {} test",
            self.name,
            self.slices,
            self.tumour_slices,
            self.patients,
            self.skipped,
            self.split[0],
            self.split[1],
            self.split[2]
        )?;
        if self.resliced > 0 {
            write!(
                f,
                "; {} coronal and sagittal cuts of training patients added",
                self.resliced
            )?;
        }
        Ok(())
    }
}

/// Reads an LGG-layout folder, splits it by patient and prepares each part.
pub fn load_split(
    root: &Path,
    size: u32,
    fractions: SplitFractions,
    seed: u64,
    max_slices: Option<usize>,
    progress: impl FnMut(usize, usize),
) -> Result<DataSplit> {
    load_sources(
        &[DataSource::single(root)],
        size,
        fractions,
        seed,
        max_slices,
        progress,
    )
}

/// Reads every source, splits each by patient on its own (seeded, so each
/// source's held-out patients do not depend on the others) and prepares the
/// parts, every slice tagged with its source. `max_slices` caps each source.
pub fn load_sources(
    sources: &[DataSource],
    size: u32,
    fractions: SplitFractions,
    seed: u64,
    max_slices: Option<usize>,
    mut progress: impl FnMut(usize, usize),
) -> Result<DataSplit> {
    crate::data::source::check_sources(sources)?;
    let empty = || Prepared {
        size,
        ..Default::default()
    };
    let mut out = DataSplit {
        train: empty(),
        val: empty(),
        test: empty(),
        sources: sources.to_vec(),
        ..Default::default()
    };
    let mut indices = Vec::with_capacity(sources.len());
    for source in sources {
        let mut index = LggIndex::scan(&source.path)?;
        if let Some(max) = max_slices {
            // Whole patients only, so the split stays patient-level.
            let mut kept = 0;
            let mut current: Option<String> = None;
            index.slices.retain(|s| {
                if current.as_ref() != Some(&s.patient) {
                    if kept >= max {
                        return false;
                    }
                    current = Some(s.patient.clone());
                }
                kept += 1;
                true
            });
        }
        indices.push(index);
    }
    let total: usize = indices.iter().map(|i| i.slices.len()).sum();
    let mut done = 0;
    for (k, (source, mut index)) in sources.iter().zip(indices).enumerate() {
        let listed = index.slices.len();
        let samples = index.load_all(|i, _| progress(done + i, total));
        done += listed;
        let summaries: Vec<PatientSummary> = index
            .patients()
            .into_iter()
            .map(|p| {
                let mine = samples.iter().filter(|s| s.record.patient == p);
                let (slices, tumour) = mine.fold((0, 0), |(n, t), s| {
                    (n + 1, t + usize::from(s.tumour_pixels() > 0))
                });
                PatientSummary {
                    patient: p,
                    slices,
                    tumour_slices: tumour,
                }
            })
            .collect();
        let split = split_patients(&summaries, fractions, seed);
        let pp = Preprocessing::default();
        let tag = u16::try_from(k).map_err(|_| crate::Error::Invalid("too many sources".into()))?;
        // Two sources may use the same patient ids (two phantom sets do):
        // with several sources a patient is named `<source>/<id>`.
        let several = sources.len() > 1;
        let qualify = |p: &str| {
            if several {
                format!("{}/{p}", source.name)
            } else {
                p.to_string()
            }
        };
        for s in &samples {
            let p = &s.record.patient;
            let part = if split.test.contains(p) {
                &mut out.test
            } else if split.val.contains(p) {
                &mut out.val
            } else {
                &mut out.train
            };
            part.push(s, &pp, tag, qualify(p))?;
        }
        // Cuts of training patients only: validation and test stay the
        // slices as acquired, comparable with runs that had no cuts.
        let mut resliced = 0;
        if source.reslice > 0 {
            for p in &split.train {
                let mine: Vec<&Sample> =
                    samples.iter().filter(|s| &s.record.patient == p).collect();
                for cut in crate::data::reslice::cut_patient(&mine, source.reslice) {
                    out.train.push(&cut, &pp, tag, qualify(p))?;
                    resliced += 1;
                }
            }
        }
        out.source_reports.push(SourceReport {
            name: source.name.clone(),
            slices: samples.len(),
            tumour_slices: summaries.iter().map(|p| p.tumour_slices).sum(),
            patients: summaries.len(),
            skipped: index.problems.len(),
            split: [split.train.len(), split.val.len(), split.test.len()],
            resliced,
        });
        out.split
            .train
            .extend(split.train.iter().map(|p| qualify(p)));
        out.split.val.extend(split.val.iter().map(|p| qualify(p)));
        out.split.test.extend(split.test.iter().map(|p| qualify(p)));
        out.problems.extend(index.problems);
    }
    Ok(out)
}

/// One batch, laid out for `Tensor::from_slice(..).view(..)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub n: usize,
    pub images: Vec<f32>,
    /// N x size x size as 0.0 / 1.0.
    pub masks: Vec<f32>,
    /// 1 = tumour.
    pub labels: Vec<i64>,
    /// Indices into the part the batch came from.
    pub indices: Vec<usize>,
}

/// The epoch's sample order: shuffled by (seed, epoch) for training.
pub fn epoch_order(len: usize, seed: u64, epoch: u32, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            seed ^ (u64::from(epoch) << 32),
        ));
    }
    order
}

/// The epoch's training draws when slices are weighted: slice `i` appears
/// `floor(w)` times plus once more with probability `frac(w)`, shuffled,
/// seeded by (seed, epoch). All weights 1 gives [`epoch_order`].
pub fn weighted_order(weights: &[f64], seed: u64, epoch: u32) -> Vec<usize> {
    if weights.iter().all(|&w| w == 1.0) {
        return epoch_order(weights.len(), seed, epoch, true);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (u64::from(epoch) << 32) ^ 0x5eed);
    let mut order = Vec::new();
    for (i, &w) in weights.iter().enumerate() {
        let whole = w.floor();
        let extra = rand::Rng::random_bool(&mut rng, (w - whole).clamp(0.0, 1.0));
        for _ in 0..(whole as usize + usize::from(extra)) {
            order.push(i);
        }
    }
    order.shuffle(&mut rng);
    order
}

fn assemble(
    data: &Prepared,
    indices: &[usize],
    augment: Option<&Augmentation>,
    seed: u64,
    epoch: u32,
) -> Batch {
    let s = data.size as usize;
    let mut b = Batch {
        n: indices.len(),
        images: Vec::with_capacity(indices.len() * 3 * s * s),
        masks: Vec::with_capacity(indices.len() * s * s),
        labels: Vec::with_capacity(indices.len()),
        indices: indices.to_vec(),
    };
    for &i in indices {
        let mut img = data.image(i).to_vec();
        let mut mask = data.mask(i).to_vec();
        if let Some(a) = augment {
            // Seeded per (epoch, sample), so results do not depend on which
            // worker thread assembled the batch.
            let mut rng = ChaCha8Rng::seed_from_u64(
                seed.wrapping_mul(31) ^ (u64::from(epoch) << 40) ^ i as u64,
            );
            a.apply(&mut rng, &mut img, &mut mask, s, s);
        }
        b.images.extend_from_slice(&img);
        b.masks.extend(mask.iter().map(|&m| f32::from(m)));
        b.labels.push(i64::from(data.labels[i]));
    }
    b
}

/// How an epoch's batches are made.
#[derive(Debug, Clone, Copy)]
pub struct Batching<'a> {
    pub batch: usize,
    /// None for evaluation.
    pub augment: Option<&'a Augmentation>,
    pub seed: u64,
    pub epoch: u32,
    /// Threads assembling batches ahead of the consumer.
    pub workers: usize,
}

/// Feeds `step` the batches of `order` in order, assembled by worker threads
/// ahead of time (bounded, two batches per worker).
pub fn for_each_batch(
    data: &Prepared,
    order: &[usize],
    plan: &Batching,
    mut step: impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    let Batching {
        batch,
        augment,
        seed,
        epoch,
        workers,
    } = *plan;
    let chunks: Vec<&[usize]> = order.chunks(batch.max(1)).collect();
    let workers = workers.clamp(1, chunks.len().max(1));
    std::thread::scope(|scope| {
        let mut receivers = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel::<Batch>(2);
            receivers.push(rx);
            let chunks = &chunks;
            scope.spawn(move || {
                for chunk in chunks.iter().skip(w).step_by(workers) {
                    if tx
                        .send(assemble(data, chunk, augment, seed, epoch))
                        .is_err()
                    {
                        return; // the consumer stopped early (an error)
                    }
                }
            });
        }
        for k in 0..chunks.len() {
            let b = receivers[k % workers]
                .recv()
                .expect("worker produces its batches");
            step(b)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One folder under two names, once alone and once beside another
    /// source: its patients are the same people in both runs.
    #[test]
    fn patients_match_across_runs_by_folder_not_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let named = |name: &str, path: &Path| DataSource {
            name: name.into(),
            ..DataSource::single(path)
        };
        let alone = DataSplit {
            sources: vec![named("x", &a)],
            ..Default::default()
        };
        let both = DataSplit {
            sources: vec![named("y", &a), named("other", &b)],
            ..Default::default()
        };
        let one = alone.patients_by_folder(&["P1".into(), "P2".into()]);
        let two = both.patients_by_folder(&["y/P2".into(), "other/P1".into()]);
        let p2 = (a.canonicalize().unwrap(), "P2".to_string());
        assert_eq!(shared_patients(&one, &two), [&p2]);
        // The same folder named by a parent in one run: the same patients.
        let parent = DataSplit {
            sources: vec![named("z", dir.path())],
            ..Default::default()
        };
        let above = parent.patients_by_folder(&["P2".into()]);
        assert_eq!(shared_patients(&one, &above), [&p2]);
        assert!(shared_patients(&two, &alone.patients_by_folder(&["P3".into()])).is_empty());
    }

    fn toy(n: usize) -> Prepared {
        let size = 8;
        let mut p = Prepared {
            size,
            ..Default::default()
        };
        for i in 0..n {
            p.images.extend((0..3 * 64).map(|k| (i * 1000 + k) as f32));
            p.masks.extend((0..64).map(|k| u8::from(k == i % 64)));
            p.patients.push(format!("P{i}"));
            p.labels.push(i % 2 == 0);
            p.true_area.push(1);
            p.sources.push(0);
        }
        p
    }

    #[test]
    fn batches_arrive_in_order_whatever_the_worker_count() {
        let data = toy(11);
        let order = epoch_order(11, 3, 1, true);
        let collect = |workers| {
            let mut seen = Vec::new();
            let aug = Augmentation::default();
            let plan = Batching {
                batch: 4,
                augment: Some(&aug),
                seed: 3,
                epoch: 1,
                workers,
            };
            for_each_batch(&data, &order, &plan, |b| {
                seen.push(b);
                Ok(())
            })
            .unwrap();
            seen
        };
        let one = collect(1);
        assert_eq!(one.iter().map(|b| b.n).collect::<Vec<_>>(), [4, 4, 3]);
        assert_eq!(
            one.iter()
                .flat_map(|b| b.indices.clone())
                .collect::<Vec<_>>(),
            order
        );
        assert_eq!(one, collect(3), "same batches with 3 workers");
    }

    #[test]
    fn weighted_order_draws_by_weight() {
        assert_eq!(weighted_order(&[1.0; 5], 2, 3), epoch_order(5, 2, 3, true));
        let w = [3.0, 0.0, 1.0, 0.5];
        let mut counts = [0usize; 4];
        for epoch in 1..=200 {
            let o = weighted_order(&w, 7, epoch);
            assert_eq!(o, weighted_order(&w, 7, epoch), "seeded");
            for i in o {
                counts[i] += 1;
            }
        }
        assert_eq!(counts[0], 600);
        assert_eq!(counts[1], 0);
        assert_eq!(counts[2], 200);
        assert!((70..130).contains(&counts[3]), "{counts:?}");
    }

    #[test]
    fn single_channel_copies_one_plane_and_parts_split_by_source() {
        let mut data = toy(4);
        data.sources = vec![0, 1, 0, 1];
        let grey = data.single_channel(1);
        let n = 64;
        for i in 0..4 {
            let img = grey.image(i);
            assert_eq!(img[..n], data.image(i)[n..2 * n]);
            assert_eq!(img[2 * n..], data.image(i)[n..2 * n]);
        }
        let b = data.of_source(1);
        assert_eq!(b.patients, vec!["P1", "P3"]);
        assert_eq!(b.sources, vec![1, 1]);
        assert_eq!(data.of_source(0).patients, vec!["P0", "P2"]);
    }

    #[test]
    fn without_augmentation_batches_hold_the_data() {
        let data = toy(3);
        let mut got = None;
        for_each_batch(
            &data,
            &[2, 0],
            &Batching {
                batch: 2,
                augment: None,
                seed: 0,
                epoch: 1,
                workers: 2,
            },
            |b| {
                got = Some(b);
                Ok(())
            },
        )
        .unwrap();
        let b = got.unwrap();
        assert_eq!(&b.images[..192], data.image(2));
        assert_eq!(b.labels, [1, 1]);
        assert_eq!(b.masks[2], 1.0);
    }

    #[test]
    fn an_error_in_the_step_stops_the_epoch() {
        let data = toy(20);
        let order = epoch_order(20, 0, 1, false);
        let mut calls = 0;
        let r = for_each_batch(
            &data,
            &order,
            &Batching {
                batch: 2,
                augment: None,
                seed: 0,
                epoch: 1,
                workers: 2,
            },
            |_| {
                calls += 1;
                Err(crate::Error::Invalid("boom".into()))
            },
        );
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn reslicing_adds_cuts_of_training_patients_only() {
        use crate::data::phantom::{generate_cohort, render::CohortSettings};
        let dir = tempfile::tempdir().unwrap();
        generate_cohort(dir.path(), 4, 5, &CohortSettings::default(), |_, _| {}).unwrap();
        let fractions = SplitFractions {
            test: 0.25,
            val: 0.25,
        };
        let mut source = DataSource::single(&dir.path().join("kaggle_3m"));
        let plain = load_sources(&[source.clone()], 32, fractions, 1, None, |_, _| {}).unwrap();
        source.reslice = 2;
        let cut = load_sources(&[source], 32, fractions, 1, None, |_, _| {}).unwrap();
        let train_patients = plain.split.train.len();
        assert!(train_patients > 0);
        // Two coronal and two sagittal cuts per training patient.
        assert_eq!(cut.train.len(), plain.train.len() + 4 * train_patients);
        assert_eq!(cut.source_reports[0].resliced, 4 * train_patients);
        assert!(cut.source_reports[0]
            .to_string()
            .contains("cuts of training patients"));
        assert!(!plain.source_reports[0].to_string().contains("cuts"));
        assert_eq!(
            (cut.val.images, cut.test.images),
            (plain.val.images, plain.test.images)
        );
        // Every cut belongs to a training patient.
        for p in &cut.train.patients[plain.train.len()..] {
            assert!(cut.split.train.contains(p), "{p}");
        }
    }
}
