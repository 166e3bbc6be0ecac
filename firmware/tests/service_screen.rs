//! The service's screen after a series: the last slice reads clear, and
//! the series' tumour slice earlier on is still shown (in red) under it.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// Red pixels of the series line (`ALERT` in `screen`) on the last screen
/// after `neuroscreen run --once` over `slices` (name, has a blob).
fn alert_pixels_after(slices: &[(&str, bool)]) -> (usize, Vec<serde_json::Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let models = dir.join("models");
    write_model_set(&models, &ModelSet::default());
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for (name, blob) in slices {
        let img = if *blob {
            blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC])
        } else {
            dark_slice(BLOB_W, BLOB_H)
        };
        img.save(inbox.join(name)).unwrap();
    }
    let config = dir.join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "[models]\ndir = {:?}\nthreads = 1\n[inbox]\ndir = {:?}\n[store]\ndir = {:?}\n\
             [display]\nkind = \"snapshot\"\nwidth = 800\nheight = 480\n",
            models.display().to_string(),
            inbox.display().to_string(),
            dir.join("results").display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("results/results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let screen = image::open(dir.join("results/screen.png"))
        .unwrap()
        .to_rgb8();
    let red = screen.pixels().filter(|p| p.0 == [255, 90, 74]).count();
    (red, lines)
}

fn last_input(lines: &[serde_json::Value]) -> (String, String) {
    let last = lines.last().unwrap();
    let name = Path::new(last["input"].as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    (name, last["verdict"].as_str().unwrap().to_string())
}

#[test]
fn a_tumour_earlier_in_the_series_stays_on_screen_after_a_clear_last_slice() {
    let (red, lines) = alert_pixels_after(&[("a.png", true), ("b.png", false), ("c.png", false)]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["verdict"], "tumour", "{lines:?}");
    assert_eq!(last_input(&lines), ("c.png".into(), "clear".into()));
    assert!(red > 30, "{red} red pixels");
    // The same series without its tumour slice: nothing in red.
    let (red, lines) = alert_pixels_after(&[("b.png", false), ("c.png", false)]);
    assert_eq!(last_input(&lines), ("c.png".into(), "clear".into()));
    assert_eq!(red, 0);
}
