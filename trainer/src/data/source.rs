//! Several data roots in one run: each is a folder in the LGG layout with a
//! name (for per-source reports) and a sampling weight (how often its
//! slices are drawn per epoch relative to their count).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A `--data` argument or a set of sources that cannot be trained on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error("--data {arg:?}: no folder given (NAME=DIR[:WEIGHT])")]
    NoFolder { arg: String },
    #[error("--data {arg:?}: weight must be 0 or more, got {weight}")]
    ArgWeight { arg: String, weight: f64 },
    #[error("no data source given")]
    NoSources,
    #[error("two data sources are named {name:?}; name them (--data NAME=DIR)")]
    DuplicateName { name: String },
    #[error("source {name}: weight must be 0 or more")]
    Weight { name: String },
    #[error("every data source has weight 0: nothing to train on")]
    AllWeightsZero,
    #[error("source {name}: the weight of tumour type {kind:?} must be 0 or more")]
    TypeWeight { name: String, kind: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// Short name used in reports, e.g. `lgg` or `figshare`.
    pub name: String,
    pub path: PathBuf,
    /// Each slice of this source is drawn `weight` times per epoch on
    /// average (1 = once); 0 keeps the source for evaluation only.
    #[serde(default = "one")]
    pub weight: f64,
    /// Coronal and sagittal slices to cut per training patient from its
    /// axial stack, each (`data::reslice`; 0 = none). Only for volumes of
    /// consecutive axial slices such as LGG's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reslice: usize,
    /// A factor on `weight` per tumour type, from the folder's `labels.csv`
    /// (`type_weights = { glioma = 2.0 }` draws that type's slices twice
    /// as often); types not named keep 1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub type_weights: BTreeMap<String, f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn one() -> f64 {
    1.0
}

impl DataSource {
    /// A lone root, named after its folder.
    pub fn single(path: &Path) -> Self {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .unwrap_or("data")
            .to_string();
        Self {
            name,
            path: path.to_path_buf(),
            weight: 1.0,
            reslice: 0,
            type_weights: BTreeMap::new(),
        }
    }

    /// Parses the command line's `NAME=DIR[:WEIGHT]` or a bare `DIR`.
    /// A trailing `:<number>` is the weight; any other colon stays in the
    /// path.
    pub fn parse(arg: &str) -> Result<Self, SourceError> {
        let (name, rest) = match arg.split_once('=') {
            Some((n, r)) if !n.is_empty() && !n.contains('/') => (Some(n.to_string()), r),
            _ => (None, arg),
        };
        let (path, weight) = match rest.rsplit_once(':') {
            Some((p, w)) if !p.is_empty() && w.parse::<f64>().is_ok() => {
                (p, w.parse::<f64>().expect("checked"))
            }
            _ => (rest, 1.0),
        };
        if path.is_empty() {
            return Err(SourceError::NoFolder {
                arg: arg.to_string(),
            });
        }
        if !(weight >= 0.0 && weight.is_finite()) {
            return Err(SourceError::ArgWeight {
                arg: arg.to_string(),
                weight,
            });
        }
        let mut source = DataSource::single(Path::new(path));
        if let Some(n) = name {
            source.name = n;
        }
        source.weight = weight;
        Ok(source)
    }
}

/// Names must tell the sources apart in reports.
pub fn check_sources(sources: &[DataSource]) -> Result<(), SourceError> {
    if sources.is_empty() {
        return Err(SourceError::NoSources);
    }
    for (i, s) in sources.iter().enumerate() {
        if sources[..i].iter().any(|t| t.name == s.name) {
            return Err(SourceError::DuplicateName {
                name: s.name.clone(),
            });
        }
        if !(s.weight >= 0.0 && s.weight.is_finite()) {
            return Err(SourceError::Weight {
                name: s.name.clone(),
            });
        }
        if let Some((kind, _)) = s
            .type_weights
            .iter()
            .find(|(_, w)| !(**w >= 0.0 && w.is_finite()))
        {
            return Err(SourceError::TypeWeight {
                name: s.name.clone(),
                kind: kind.clone(),
            });
        }
    }
    if sources.iter().all(|s| s.weight == 0.0) {
        return Err(SourceError::AllWeightsZero);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_paths_and_weights() {
        let s = DataSource::parse("lgg=/data/lgg/kaggle_3m:2").unwrap();
        assert_eq!(
            (s.name.as_str(), s.path.as_path(), s.weight),
            ("lgg", Path::new("/data/lgg/kaggle_3m"), 2.0)
        );
        let s = DataSource::parse("../shared/data/figshare").unwrap();
        assert_eq!((s.name.as_str(), s.weight), ("figshare", 1.0));
        let s = DataSource::parse("f=/odd:dir/x:0.5").unwrap();
        assert_eq!((s.path.as_path(), s.weight), (Path::new("/odd:dir/x"), 0.5));
        let s = DataSource::parse("/a/b=c").unwrap();
        assert_eq!(s.path, Path::new("/a/b=c"), "a slash before '=' is a path");
        assert!(DataSource::parse("x=")
            .unwrap_err()
            .to_string()
            .contains("no folder"));
        assert!(DataSource::parse("x=/d:-1")
            .unwrap_err()
            .to_string()
            .contains("weight"));
        assert_eq!(
            DataSource::parse("x=/d:-1"),
            Err(SourceError::ArgWeight {
                arg: "x=/d:-1".into(),
                weight: -1.0
            })
        );
    }

    #[test]
    fn duplicate_names_and_all_zero_weights_are_refused() {
        let a = DataSource::parse("a=/x").unwrap();
        assert!(check_sources(&[a.clone(), a.clone()])
            .unwrap_err()
            .to_string()
            .contains("named \"a\""));
        assert_eq!(
            check_sources(&[a.clone(), a.clone()]),
            Err(SourceError::DuplicateName { name: "a".into() })
        );
        let z = DataSource::parse("z=/y:0").unwrap();
        assert!(check_sources(std::slice::from_ref(&z))
            .unwrap_err()
            .to_string()
            .contains("weight 0"));
        assert_eq!(
            check_sources(std::slice::from_ref(&z)),
            Err(SourceError::AllWeightsZero)
        );
        assert!(check_sources(&[a.clone(), z]).is_ok());
        assert!(check_sources(&[]).is_err());
        let mut typed = a;
        typed.type_weights.insert("glioma".into(), -1.0);
        assert_eq!(
            check_sources(&[typed]),
            Err(SourceError::TypeWeight {
                name: "a".into(),
                kind: "glioma".into()
            })
        );
    }
}
