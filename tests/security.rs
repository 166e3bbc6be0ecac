//! Never let anyone in: no listening socket, owner-only results and inbox,
//! and a model set swapped by someone without the signing key refused.

use neuroscreen_e2e::{copy_models, neuroscreen, repo, samples};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn write_config(dir: &Path, models: &Path, extra: &str) -> PathBuf {
    let config = dir.join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "[models]\ndir = {:?}\nthreads = 1\n{extra}",
            models.to_str().unwrap()
        ),
    )
    .unwrap();
    config
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn results_and_inbox_are_owner_only_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &repo().join("models"), "");
    // An inbox that exists with wide permissions is narrowed; the results
    // folder does not exist yet and is made.
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::set_permissions(&inbox, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::copy(&samples()[0], inbox.join("a.png")).unwrap();
    std::fs::write(inbox.join("bad.png"), b"not a slice").unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(neuroscreen())
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let results = tmp.path().join("results");
    assert_eq!(mode(&inbox), 0o700, "inbox");
    let mut checked = 0;
    let mut stack = vec![results.clone()];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
                checked += 1;
            }
        }
    }
    // results.jsonl, two records, a mask or not, an overlay, the screen,
    // the session's CSV and HTML.
    assert!(checked >= 7, "only {checked} files");
    assert!(results.join("sessions").is_dir());
}

/// Socket inodes among `pid`'s open files.
fn socket_inodes(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect()
}

/// Rows of a /proc/net table owned by one of `inodes` that accept
/// connections or datagrams from outside.
fn listening(pid: u32, inodes: &HashSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local, remote, state ... inode is column 9.
            let (state, inode) = (cols[3], cols[9]);
            let open = table.starts_with("udp") || state == "0A";
            if open && inodes.contains(inode) {
                found.push(format!("{table}: {line}"));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) {
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // Flags 00010000 is __SO_ACCEPTON: a listening unix socket.
            if cols.len() > 6 && cols[3] == "00010000" && inodes.contains(cols[6]) {
                found.push(format!("unix: {line}"));
            }
        }
    }
    found
}

#[test]
fn the_service_without_dicom_configured_opens_no_listening_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &repo().join("models"), "");
    let log = tmp.path().join("run.log");
    let mut child = Command::new(neuroscreen())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("neuroscreen running")) {
        assert!(started.elapsed() < Duration::from_secs(60), "no start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A slice through the whole pipeline first, so every lazily opened
    // resource (watcher, display, store) is open when we look.
    std::fs::copy(&samples()[0], tmp.path().join("inbox/a.png")).unwrap();
    let results = tmp.path().join("results/results.jsonl");
    while !std::fs::read_to_string(&results).is_ok_and(|t| !t.is_empty()) {
        assert!(started.elapsed() < Duration::from_secs(60), "no result");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id();
    let inodes = socket_inodes(pid);
    let open = listening(pid, &inodes);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(open.is_empty(), "listening sockets: {open:#?}");
}

fn manifest_cli(args: &[&str], models: &Path) -> Output {
    Command::new(neuroscreen())
        .arg("manifest")
        .args(args)
        .arg("--models")
        .arg(models)
        .output()
        .unwrap()
}

fn check_with(config: &Path) -> Output {
    Command::new(neuroscreen())
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn a_pinned_key_accepts_its_signed_set_and_refuses_a_swapped_or_unsigned_one() {
    let tmp = tempfile::tempdir().unwrap();
    let models = copy_models(tmp.path());
    let key = tmp.path().join("publisher.key");
    let made = Command::new(neuroscreen())
        .args(["manifest", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr_of(&made));
    assert_eq!(mode(&key), 0o600);
    let public = std::fs::read_to_string(tmp.path().join("publisher.key.pub"))
        .unwrap()
        .trim()
        .to_string();
    let signed = Command::new(neuroscreen())
        .args(["manifest", "sign", "--key"])
        .arg(&key)
        .arg("--models")
        .arg(&models)
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", stderr_of(&signed));
    let verified = manifest_cli(&["verify", "--public-key", &public], &models);
    assert!(verified.status.success(), "{}", stderr_of(&verified));

    let config = write_config(tmp.path(), &models, &format!("public_key = {public:?}\n"));
    let ok = check_with(&config);
    assert!(
        ok.status.success(),
        "signed set refused: {}",
        stderr_of(&ok)
    );
    std::fs::create_dir_all(tmp.path().join("inbox")).unwrap();
    std::fs::copy(&samples()[0], tmp.path().join("inbox/a.png")).unwrap();
    let run = Command::new(neuroscreen())
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr_of(&run));

    // A swapped set: someone else's models with a manifest whose hashes
    // match them (so sha256 checks alone pass), signed with another key.
    let manifest = models.join("manifest.json");
    let original = std::fs::read(&manifest).unwrap();
    let mut swapped: serde_json::Value = serde_json::from_slice(&original).unwrap();
    swapped["models"][0]["threshold"] = 0.01.into();
    std::fs::write(&manifest, serde_json::to_vec_pretty(&swapped).unwrap()).unwrap();
    let refused = check_with(&config);
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("manifest.json.sig") && stderr.contains("does not verify"),
        "{stderr}"
    );
    let run = Command::new(neuroscreen())
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr_of(&run));
    assert!(stderr_of(&run).contains("refusing to start"));
    let other = tmp.path().join("other.key");
    Command::new(neuroscreen())
        .args(["manifest", "keygen", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    let resigned = manifest_cli(&["sign", "--key", other.to_str().unwrap()], &models);
    assert!(resigned.status.success(), "{}", stderr_of(&resigned));
    let refused = check_with(&config);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr_of(&refused).contains("does not verify"));

    // No signature at all while a key is pinned.
    std::fs::write(&manifest, &original).unwrap();
    std::fs::remove_file(models.join("manifest.json.sig")).unwrap();
    let refused = check_with(&config);
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("manifest.json.sig") && stderr.contains("missing"),
        "{stderr}"
    );
    // `scan --config` honours the pin as `run` does: the unsigned set is
    // refused before any slice is screened.
    let scan = |config: &Path| {
        Command::new(neuroscreen())
            .args(["scan", "--config"])
            .arg(config)
            .arg("--out")
            .arg(tmp.path().join("scanned"))
            .arg(&samples()[0])
            .output()
            .unwrap()
    };
    let refused = scan(&config);
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to start") && stderr.contains("manifest.json.sig"),
        "{stderr}"
    );
    assert!(!tmp.path().join("scanned/results.jsonl").exists());
    // So do `demo --config` and `hil serve --config`.
    for args in [
        &["demo"][..],
        &["hil", "serve", "--listen", "127.0.0.1:0", "--once"][..],
    ] {
        let refused = Command::new(neuroscreen())
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--out")
            .arg(tmp.path().join("refused"))
            .output()
            .unwrap();
        let stderr = stderr_of(&refused);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("manifest.json.sig"), "{args:?}: {stderr}");
    }
    // And `bench --config`: it times the engine the config builds.
    let bench = |config: &Path| {
        Command::new(neuroscreen())
            .args([
                "bench",
                "--runs",
                "1",
                "--no-ort",
                "--precision",
                "f32",
                "--config",
            ])
            .arg(config)
            .output()
            .unwrap()
    };
    let refused = bench(&config);
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("manifest.json.sig"), "{stderr}");
    // Without a pinned key the same unsigned set runs as before.
    let unpinned = write_config(tmp.path(), &models, "");
    assert!(check_with(&unpinned).status.success());
    let scanned = scan(&unpinned);
    assert!(scanned.status.success(), "{}", stderr_of(&scanned));
    let benched = bench(&unpinned);
    assert!(benched.status.success(), "{}", stderr_of(&benched));
}
