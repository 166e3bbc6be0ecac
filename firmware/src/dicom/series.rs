//! A folder of DICOM files (a scanner export, no DICOMDIR needed) comes
//! out as series (SeriesInstanceUID), each in slice order: by position
//! along the slice normal (ImagePositionPatient projected on the normal of
//! ImageOrientationPatient, inferior to superior for axial slices) when
//! every slice of the series states both and they share one orientation,
//! else by InstanceNumber when every slice has one, else by file name.

use super::frames::{along_normal, geometry};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::OpenFileOptions;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

struct Header {
    series: String,
    position: Option<[f64; 3]>,
    orientation: Option<[f64; 6]>,
    instance: Option<i64>,
}

/// How a series was put in order (for the log and the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderedBy {
    Position,
    InstanceNumber,
    FileName,
}

/// `files` (in walk order) with each DICOM series gathered at the place of
/// its first file and put in slice order; other files, and DICOM files
/// whose header cannot be read (they get their error later), stay put.
pub fn order(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let headers: Vec<Option<Header>> = files.iter().map(|p| header(p)).collect();
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(h) = h {
            members.entry(h.series.as_str()).or_default().push(i);
        }
    }
    let mut out = Vec::with_capacity(files.len());
    let mut emitted = vec![false; files.len()];
    for i in 0..files.len() {
        if emitted[i] {
            continue;
        }
        let Some(h) = &headers[i] else {
            out.push(files[i].clone());
            emitted[i] = true;
            continue;
        };
        let mut series = members[h.series.as_str()].clone();
        let by = sort_series(&mut series, &headers);
        if series.len() > 1 {
            tracing::info!(
                series = %h.series,
                slices = series.len(),
                "DICOM series in slice order by {by:?}"
            );
        }
        for j in series {
            emitted[j] = true;
            out.push(files[j].clone());
        }
    }
    out
}

fn sort_series(series: &mut [usize], headers: &[Option<Header>]) -> OrderedBy {
    let h = |i: usize| headers[i].as_ref().expect("members have headers");
    let first_orientation = h(series[0]).orientation;
    let same_plane = series.iter().all(|&i| {
        let hi = h(i);
        hi.position.is_some()
            && hi.orientation.is_some()
            && close(hi.orientation, first_orientation)
    });
    if same_plane {
        let key = |i: usize| along_normal(h(i).position.unwrap(), h(i).orientation.unwrap());
        series.sort_by(|&a, &b| {
            key(a)
                .total_cmp(&key(b))
                .then(h(a).instance.cmp(&h(b).instance))
        });
        OrderedBy::Position
    } else if series.iter().all(|&i| h(i).instance.is_some()) {
        series.sort_by_key(|&i| h(i).instance);
        OrderedBy::InstanceNumber
    } else {
        OrderedBy::FileName
    }
}

fn close(a: Option<[f64; 6]>, b: Option<[f64; 6]>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4),
        _ => false,
    }
}

/// The header up to the pixel data; `None` for anything that is not a
/// readable DICOM file with a SeriesInstanceUID.
fn header(path: &Path) -> Option<Header> {
    if !looks_like_dicom(path) {
        return None;
    }
    // An object over the limit is refused by the screener; here it only
    // keeps its place in name order.
    let bytes = crate::input_file::read(path, &crate::input_file::InputLimits::default()).ok()?;
    let preamble = if bytes.get(128..132) == Some(b"DICM") {
        128
    } else {
        0
    };
    let body = &bytes[preamble..];
    // A file whose lengths lie is left to the reader, which names the problem.
    super::lengths::check_file(body, preamble).ok()?;
    let object = std::panic::catch_unwind(|| {
        // The preamble is gone already (see read.rs: dicom-object would
        // take "DICM" at byte 128 of the body for the magic).
        OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .read_until(tags::PIXEL_DATA)
            .from_reader(body)
    })
    .ok()?
    .ok()?;
    let series = object
        .element_opt(tags::SERIES_INSTANCE_UID)
        .ok()
        .flatten()?
        .to_str()
        .ok()?
        .trim_end_matches(['\0', ' '])
        .to_string();
    let g = geometry(&object, 0);
    Some(Header {
        series,
        position: g.position,
        orientation: g.orientation,
        instance: object
            .element_opt(tags::INSTANCE_NUMBER)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<i64>().ok()),
    })
}

fn looks_like_dicom(path: &Path) -> bool {
    crate::input_file::head(path, 132).is_ok_and(|head| super::is_dicom(&head))
}
