//! The session's results per series: what a radiographer reads first after
//! pushing a series of twenty slices is "tumour on slices 7-9 of 20", not
//! twenty lines. A DICOM slice belongs to its SeriesInstanceUID; any other
//! file to the folder it lies in (one patient's or one series' export).

use super::record::{Record, RecordVerdict};
use std::collections::HashMap;
use std::path::Path;

/// One series of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRow {
    /// Series number and description for DICOM (else its UID), or the folder.
    pub label: String,
    pub slices: usize,
    pub tumour: usize,
    pub errors: usize,
    /// Places (from 1, in the order screened: slice order for a DICOM
    /// series) of the slices read tumour.
    pub flagged: Vec<usize>,
    /// The largest mask: its area (mm² when the spacing is known, else px)
    /// and the slice's file name.
    pub largest: Option<Largest>,
    /// The first caution a slice of the series carried.
    pub caution: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Largest {
    pub area: String,
    pub slice: String,
    px: u64,
}

/// Gathers rows as records come (a service session is read back from its
/// log one record at a time), in the order each series first appeared.
#[derive(Debug, Default)]
pub struct BySeries {
    rows: Vec<SeriesRow>,
    index: HashMap<String, usize>,
}

impl BySeries {
    pub fn add(&mut self, r: &Record) {
        let (key, label) = series_of(r);
        let at = *self.index.entry(key).or_insert_with(|| {
            self.rows.push(SeriesRow::new(label));
            self.rows.len() - 1
        });
        self.rows[at].count(r);
    }

    pub fn rows(&self) -> &[SeriesRow] {
        &self.rows
    }

    pub fn into_rows(self) -> Vec<SeriesRow> {
        self.rows
    }
}

/// The series the latest result belongs to, so far: what the screen shows
/// under a result, so a tumour on slice 7 of 20 is still in view when slice
/// 20 comes up clear. Holds one series only (a service runs for months);
/// a result of another series starts a new one.
#[derive(Debug, Default)]
pub struct CurrentSeries {
    /// The series' key and its row so far.
    now: Option<(String, SeriesRow)>,
}

impl CurrentSeries {
    pub fn add(&mut self, r: &Record) -> &SeriesRow {
        // A file that could not be read has no header to name its series:
        // most likely it is one of the series arriving, which it must not
        // end (its tumour slices would leave the screen).
        let unnamed = r.verdict == RecordVerdict::Error && r.dicom.is_none();
        if !(unnamed && self.now.is_some()) {
            let (key, label) = series_of(r);
            if self.now.as_ref().is_none_or(|(k, _)| *k != key) {
                self.now = Some((key, SeriesRow::new(label)));
            }
        }
        let (_, row) = self.now.as_mut().expect("a series is set above");
        row.count(r);
        row
    }
}

impl SeriesRow {
    fn new(label: String) -> Self {
        Self {
            label,
            slices: 0,
            tumour: 0,
            errors: 0,
            flagged: Vec::new(),
            largest: None,
            caution: None,
        }
    }

    fn count(&mut self, r: &Record) {
        self.slices += 1;
        match r.verdict {
            RecordVerdict::Error => self.errors += 1,
            RecordVerdict::Tumour => {
                self.tumour += 1;
                self.flagged.push(self.slices);
                let px = r.area_px.unwrap_or(0);
                if self.largest.as_ref().is_none_or(|l| px > l.px) {
                    self.largest = Some(Largest {
                        area: match r.area_mm2 {
                            Some(mm2) => format!("{mm2:.1} mm²"),
                            None => format!("{px} px"),
                        },
                        slice: file_name(&r.input),
                        px,
                    });
                }
            }
            RecordVerdict::Clear => {}
        }
        if self.caution.is_none() {
            self.caution.clone_from(&r.caution);
        }
    }

    /// "7-9, 12 of 20", or "none of 20".
    pub fn flagged_text(&self) -> String {
        if self.flagged.is_empty() {
            return format!("none of {}", self.slices);
        }
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &i in &self.flagged {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == i => *end = i,
                _ => runs.push((i, i)),
            }
        }
        let runs: Vec<String> = runs
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        format!("{} of {}", runs.join(", "), self.slices)
    }
}

/// The series key and its label for people.
fn series_of(r: &Record) -> (String, String) {
    if let Some(d) = &r.dicom {
        if let Some(uid) = &d.series_instance_uid {
            let label = match (d.series_number, &d.series_description) {
                (Some(n), Some(text)) => format!("series {n}: {text}"),
                (None, Some(text)) => text.clone(),
                (Some(n), None) => format!("series {n}"),
                (None, None) => format!("series {uid}"),
            };
            return (format!("dicom:{uid}"), label);
        }
    }
    // A frame of a multi-frame file is named `<file>#<frame>`: its folder
    // is the file's.
    let folder = r
        .input
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let label = if folder.is_empty() {
        ".".to_string()
    } else {
        folder.clone()
    };
    (format!("folder:{folder}"), label)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::DicomRef;

    fn record(input: &str, verdict: RecordVerdict, px: u64) -> Record {
        let mut r = Record::new(input.into(), "f32".into(), Default::default());
        r.verdict = verdict;
        r.area_px = Some(px);
        r
    }

    fn dicom(mut r: Record, uid: &str, number: Option<i64>, text: Option<&str>) -> Record {
        r.dicom = Some(DicomRef {
            series_instance_uid: Some(uid.into()),
            series_number: number,
            series_description: text.map(str::to_string),
            ..DicomRef::default()
        });
        r
    }

    #[test]
    fn slices_gather_per_series_with_runs_of_flagged_places() {
        use RecordVerdict::*;
        let verdicts = [Clear, Tumour, Tumour, Tumour, Clear, Error, Tumour, Clear];
        let mut by = BySeries::default();
        // Two DICOM series interleaved with a folder of PNGs.
        for (i, v) in verdicts.iter().enumerate() {
            let mut r = dicom(
                record(&format!("/in/a/{i}.dcm"), *v, 10 * i as u64),
                "1.2.3",
                Some(3),
                Some("FLAIR AX"),
            );
            if i == 3 {
                r.area_mm2 = Some(12.25);
            }
            by.add(&r);
            by.add(&record(&format!("/in/png/{i}.png"), Clear, 0));
        }
        let mut dwi = dicom(record("/in/a/dwi.dcm", Tumour, 5), "1.2.4", None, None);
        dwi.caution = Some("outside the models' training: a mosaic".into());
        by.add(&dwi);
        let rows = by.rows();
        assert_eq!(rows.len(), 3, "{rows:?}");
        let flair = &rows[0];
        assert_eq!(flair.label, "series 3: FLAIR AX");
        assert_eq!((flair.slices, flair.tumour, flair.errors), (8, 4, 1));
        assert_eq!(flair.flagged, [2, 3, 4, 7]);
        assert_eq!(flair.flagged_text(), "2-4, 7 of 8");
        // The largest mask by pixels (slice 7, 60 px) beats the one with a
        // known spacing (slice 4, 30 px).
        let largest = flair.largest.as_ref().unwrap();
        assert_eq!(
            (largest.area.as_str(), largest.slice.as_str()),
            ("60 px", "6.dcm")
        );
        assert_eq!(flair.caution, None);
        let png = &rows[1];
        assert_eq!(png.label, "/in/png");
        assert_eq!(png.flagged_text(), "none of 8");
        assert_eq!(png.largest, None);
        let dwi = &rows[2];
        assert_eq!(dwi.label, "series 1.2.4");
        assert_eq!(dwi.flagged_text(), "1 of 1");
        assert_eq!(
            dwi.caution.as_deref(),
            Some("outside the models' training: a mosaic")
        );
    }

    #[test]
    fn the_current_series_starts_again_when_another_comes() {
        let mut now = CurrentSeries::default();
        let a = |i: u64, v| dicom(record(&format!("/in/{i}.dcm"), v, i), "1.1", Some(2), None);
        now.add(&a(1, RecordVerdict::Clear));
        let row = now.add(&a(2, RecordVerdict::Tumour)).clone();
        assert_eq!(
            (row.label.as_str(), row.flagged_text()),
            ("series 2", "2 of 2".into())
        );
        let other = dicom(
            record("/in/9.dcm", RecordVerdict::Clear, 0),
            "1.2",
            Some(3),
            None,
        );
        let row = now.add(&other).clone();
        assert_eq!(
            (row.label.as_str(), row.flagged_text()),
            ("series 3", "none of 1".into())
        );
        // Back to the first series: counted afresh, as the screen would.
        assert_eq!(now.add(&a(3, RecordVerdict::Clear)).slices, 1);
        now.add(&a(4, RecordVerdict::Tumour));
        // A file of the series that could not be read (no header, so no
        // series) is counted in it and does not end it.
        let broken = record("/in/elsewhere/5.dcm", RecordVerdict::Error, 0);
        let row = now.add(&broken).clone();
        assert_eq!((row.slices, row.errors, row.tumour), (3, 1, 1));
        let row = now.add(&a(6, RecordVerdict::Clear)).clone();
        assert_eq!(
            (row.label.as_str(), row.flagged_text()),
            ("series 2", "2 of 4".into())
        );
        // With no series yet, it starts one of its folder.
        let mut fresh = CurrentSeries::default();
        assert_eq!(fresh.add(&broken).label, "/in/elsewhere");
    }

    #[test]
    fn a_series_label_uses_what_the_header_gave() {
        let label = |n, t| {
            let mut by = BySeries::default();
            by.add(&dicom(
                record("/x.dcm", RecordVerdict::Clear, 0),
                "9.9",
                n,
                t,
            ));
            by.rows()[0].label.clone()
        };
        assert_eq!(label(Some(4), Some("T2")), "series 4: T2");
        assert_eq!(label(None, Some("T2")), "T2");
        assert_eq!(label(Some(4), None), "series 4");
        let mut by = BySeries::default();
        let mut r = record("/x.dcm", RecordVerdict::Tumour, 7);
        r.area_mm2 = Some(3.5);
        by.add(&r);
        assert_eq!(by.rows()[0].label, "/");
        assert_eq!(by.rows()[0].largest.as_ref().unwrap().area, "3.5 mm²");
    }
}
