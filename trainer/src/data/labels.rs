//! A source folder's `labels.csv` (`slice,patient,tumour_type`, as our
//! Figshare folder has it): the tumour type of each patient, so results can
//! be broken down by type. Optional: a folder without it has no types.

use super::lgg::patient_id;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub const LABELS_FILE: &str = "labels.csv";

/// Tumour type per patient id (the id the reader gives the slice's folder,
/// the first component of the `slice` column). `None` when `root` has no
/// `labels.csv`; a file without the columns, a short row, or a patient with
/// two types is an error naming the file and the line.
pub fn tumour_types(root: &Path) -> Result<Option<BTreeMap<String, String>>> {
    let path = root.join(LABELS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let bad = |reason: String| Error::Data {
        path: path.clone(),
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad("empty file".into()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| bad(format!("no {name:?} column in the header {header:?}")))
    };
    let (slice_col, type_col) = (column("slice")?, column("tumour_type")?);
    let mut types = BTreeMap::new();
    for (k, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(slice), Some(kind)) = (fields.get(slice_col), fields.get(type_col)) else {
            return Err(bad(format!(
                "line {}: {} fields, the header has {}",
                k + 1,
                fields.len(),
                columns.len()
            )));
        };
        let folder = slice.split(['/', '\\']).next().unwrap_or(slice);
        let patient = patient_id(folder);
        match types.get(&patient) {
            Some(known) if known != kind => {
                return Err(bad(format!(
                    "line {}: patient {patient} is {known:?} above and {kind:?} here",
                    k + 1
                )))
            }
            Some(_) => {}
            None => {
                types.insert(patient, kind.to_string());
            }
        }
    }
    Ok(Some(types))
}

/// The tumour type of `patient` in `types` (from [`tumour_types`] of the
/// source named `source`). A run of several sources names its patients
/// `<source>/<id>` (`train::dataset`); the map is keyed by the bare id.
pub fn type_of<'a>(
    types: &'a BTreeMap<String, String>,
    source: &str,
    patient: &str,
) -> Option<&'a str> {
    let id = patient
        .strip_prefix(source)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(patient);
    types.get(id).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) {
        std::fs::write(dir.join(LABELS_FILE), text).unwrap();
    }

    #[test]
    fn reads_one_type_per_patient_folder() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(tumour_types(tmp.path()).unwrap(), None);
        write(
            tmp.path(),
            "slice,patient,tumour_type\nFIGSHARE_1/FIGSHARE_1_1.jpg,1,glioma\n\
             FIGSHARE_1/FIGSHARE_1_2.jpg,1,glioma\nTCGA_CS_4941_19960909/x_1.tif,2,pituitary\n",
        );
        let t = tumour_types(tmp.path()).unwrap().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t["FIGSHARE_1"], "glioma");
        // The same id the reader gives the folder (date dropped).
        assert_eq!(t["TCGA_CS_4941"], "pituitary");
    }

    #[test]
    fn a_patient_is_found_with_or_without_its_source_name() {
        let types = BTreeMap::from([("P_1".to_string(), "glioma".to_string())]);
        assert_eq!(type_of(&types, "fig", "fig/P_1"), Some("glioma"));
        assert_eq!(type_of(&types, "fig", "P_1"), Some("glioma"));
        assert_eq!(type_of(&types, "fig", "figP_1"), None);
        assert_eq!(type_of(&types, "fig", "lgg/P_1"), None);
    }

    #[test]
    fn malformed_files_are_named_errors() {
        let tmp = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("slice,patient\nA/a.jpg,1\n", "tumour_type"),
            ("slice,patient,tumour_type\nA/a.jpg\n", "line 2"),
            (
                "slice,patient,tumour_type\nA/a.jpg,1,glioma\nA/b.jpg,1,meningioma\n",
                "line 3: patient A",
            ),
        ] {
            write(tmp.path(), text);
            let e = tumour_types(tmp.path()).unwrap_err().to_string();
            assert!(e.contains(LABELS_FILE) && e.contains(needle), "{e}");
        }
    }
}
