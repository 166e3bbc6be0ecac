//! The board's side: accept a bench, screen what it sends, answer each
//! slice. A bad slice gets an `error` answer and the connection goes on; a
//! broken connection ends that connection only.

use super::{Header, Reply, Stages, MAX_SLICE_BYTES};
use crate::error::{Error, Result};
use crate::screener::{Input, Screener};
use crate::store::{write_file_atomically, RecordVerdict};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

/// Serves until killed, or after the first connection ends with `once`.
/// Prints `hil: listening on ADDR` on stdout once bound (with port 0, the
/// port the system picked).
pub fn serve(screener: &Screener<'_>, listen: &str, once: bool) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .map_err(|e| Error::io(format!("hil listen address {listen}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io(format!("hil listen address {listen}"), e))?;
    println!("hil: listening on {addr}");
    let _ = std::io::stdout().flush();
    let received = screener.store.dir().join("received");
    std::fs::create_dir_all(&received).map_err(|e| Error::io(&received, e))?;
    let mut seq = 0usize;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("hil: accept failed: {e}");
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or("?".to_string(), |a| a.to_string());
        tracing::info!(%peer, "hil: bench connected");
        match connection(screener, stream, &received, &mut seq) {
            Ok(n) => tracing::info!(%peer, slices = n, "hil: bench disconnected"),
            Err(e) => tracing::warn!(%peer, "hil: connection ended: {e}"),
        }
        if once {
            break;
        }
    }
    Ok(())
}

/// Slices answered on this connection.
fn connection(
    screener: &Screener<'_>,
    stream: TcpStream,
    received: &Path,
    seq: &mut usize,
) -> std::io::Result<usize> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut answered = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(answered);
        }
        let header: Header = serde_json::from_str(line.trim()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a slice header ({e}): {:?}", line.trim()),
            )
        })?;
        if header.bytes > MAX_SLICE_BYTES {
            // The bytes cannot be skipped safely; answer and end.
            let reply = error_reply(
                &header.name,
                format!(
                    "{} bytes is over the {MAX_SLICE_BYTES} byte limit",
                    header.bytes
                ),
            );
            send(&mut writer, &reply)?;
            return Ok(answered);
        }
        let started = Instant::now();
        let mut bytes = vec![0; header.bytes as usize];
        reader.read_exact(&mut bytes)?;
        let receive = ms(started);
        *seq += 1;
        let reply = screen_one(
            screener,
            &header.name,
            bytes,
            received,
            *seq,
            receive,
            started,
        );
        send(&mut writer, &reply)?;
        answered += 1;
    }
}

fn screen_one(
    screener: &Screener<'_>,
    name: &str,
    bytes: Vec<u8>,
    received: &Path,
    seq: usize,
    receive: f64,
    started: Instant,
) -> Reply {
    // Only the last path component of what the bench calls it; numbered so
    // the same name sent twice keeps both.
    let safe: String = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control() && *c != '/')
        .collect();
    let safe = if safe.is_empty() || safe.starts_with('.') {
        format!("slice{safe}")
    } else {
        safe
    };
    let path = received.join(format!("{seq:06}-{safe}"));
    // The received file is kept so a record's `input` names a real file.
    if let Err(e) = write_file_atomically(&path, &bytes) {
        return error_reply(name, e.to_string());
    }
    let sha256 = Some(hex::encode(Sha256::digest(&bytes)));
    let screen_start = Instant::now();
    let input = Input {
        path,
        bytes: Ok(bytes),
        sha256,
        started: screen_start,
    };
    // A multi-frame DICOM gives a record per frame; the bench times slices,
    // so it is answered with the first frame's (all were screened and stored).
    let record = match screener.screen(input) {
        Ok(records) => match records.into_iter().next() {
            Some(r) => r,
            None => return error_reply(name, "no frame to screen".into()),
        },
        Err(e) => return error_reply(name, format!("cannot store the result: {e}")),
    };
    let screen_wall = ms(screen_start);
    let total = record.latency_ms.total;
    Reply {
        name: name.to_string(),
        verdict: verdict_name(record.verdict).into(),
        tumour_probability: record.tumour_probability,
        area_px: record.area_px,
        area_mm2: record.area_mm2,
        precision: record.precision.clone(),
        error: record.error.clone(),
        stages_ms: Stages {
            receive,
            filter: record.latency_ms.filter,
            segment: record.latency_ms.segment,
            screen: total,
            store: round(screen_wall - total).max(0.0),
            board: ms(started),
        },
        arch: std::env::consts::ARCH.into(),
    }
}

fn verdict_name(v: RecordVerdict) -> &'static str {
    match v {
        RecordVerdict::Tumour => "tumour",
        RecordVerdict::Clear => "clear",
        RecordVerdict::Error => "error",
    }
}

fn error_reply(name: &str, error: String) -> Reply {
    Reply {
        name: name.to_string(),
        verdict: "error".into(),
        tumour_probability: None,
        area_px: None,
        area_mm2: None,
        precision: String::new(),
        error: Some(error),
        stages_ms: Stages::default(),
        arch: std::env::consts::ARCH.into(),
    }
}

fn send(w: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    line.push('\n');
    w.write_all(line.as_bytes())?;
    w.flush()
}

fn ms(t: Instant) -> f64 {
    round(t.elapsed().as_secs_f64() * 1e3)
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
