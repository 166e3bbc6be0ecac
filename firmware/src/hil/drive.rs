//! The bench's side: send slices to a board, collect its answers, time the
//! round trips, and report per-stage p50/p95 and throughput.

use super::stats::{summarise, Summary};
use super::{Header, Reply};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct DriveOptions {
    pub board: String,
    pub files: Vec<PathBuf>,
    /// Each file is sent this many times (more samples for the percentiles).
    pub repeat: usize,
    /// How long to keep trying to connect (a board still booting).
    pub connect_wait: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub file: PathBuf,
    /// Sending, the board's work and the answer, as the host saw it.
    pub round_trip_ms: f64,
    pub reply: Reply,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub board: String,
    pub board_arch: Option<String>,
    pub slices: usize,
    pub errors: usize,
    pub wall_s: f64,
    pub throughput_per_s: f64,
    /// Stage name to its figures over the slices that ran it.
    pub stages_ms: BTreeMap<String, Summary>,
    pub answers: Vec<Answer>,
}

pub fn drive(options: &DriveOptions) -> Result<Report> {
    let stream = connect(&options.board, options.connect_wait)?;
    let link = |e: std::io::Error| Error::Hil(format!("the link to {}: {e}", options.board));
    let mut writer = stream.try_clone().map_err(link)?;
    let mut reader = BufReader::new(stream);
    let started = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..options.repeat.max(1) {
        for file in &options.files {
            let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
            let header = Header {
                name: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes: bytes.len() as u64,
            };
            let sent = Instant::now();
            let mut line = serde_json::to_string(&header)?;
            line.push('\n');
            writer.write_all(line.as_bytes()).map_err(link)?;
            writer.write_all(&bytes).map_err(link)?;
            writer.flush().map_err(link)?;
            let mut answer = String::new();
            if reader.read_line(&mut answer).map_err(link)? == 0 {
                return Err(Error::Hil(format!(
                    "the board at {} closed the connection before answering {}",
                    options.board,
                    file.display()
                )));
            }
            let reply: Reply = serde_json::from_str(answer.trim()).map_err(|e| {
                Error::Hil(format!(
                    "the board's answer for {} is not a reply: {e}",
                    file.display()
                ))
            })?;
            answers.push(Answer {
                file: file.clone(),
                round_trip_ms: sent.elapsed().as_secs_f64() * 1e3,
                reply,
            });
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    Ok(report(&options.board, answers, wall_s))
}

fn connect(board: &str, wait: Duration) -> Result<TcpStream> {
    let until = Instant::now() + wait;
    loop {
        match TcpStream::connect(board) {
            Ok(s) => {
                // Each slice is one write and one answer: no Nagle delay.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if Instant::now() >= until => {
                return Err(Error::Hil(format!(
                    "cannot reach the board at {board}: {e}"
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

pub fn report(board: &str, answers: Vec<Answer>, wall_s: f64) -> Report {
    let ok: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.reply.verdict != "error")
        .collect();
    let mut stages = BTreeMap::new();
    let mut add = |name: &str, values: Vec<f64>| {
        if let Some(s) = summarise(&values) {
            stages.insert(name.to_string(), s);
        }
    };
    add(
        "receive",
        ok.iter().map(|a| a.reply.stages_ms.receive).collect(),
    );
    add(
        "filter",
        ok.iter().filter_map(|a| a.reply.stages_ms.filter).collect(),
    );
    add(
        "segment",
        ok.iter()
            .filter_map(|a| a.reply.stages_ms.segment)
            .collect(),
    );
    add(
        "screen",
        ok.iter().map(|a| a.reply.stages_ms.screen).collect(),
    );
    add(
        "store",
        ok.iter().map(|a| a.reply.stages_ms.store).collect(),
    );
    add(
        "board",
        ok.iter().map(|a| a.reply.stages_ms.board).collect(),
    );
    add("round_trip", ok.iter().map(|a| a.round_trip_ms).collect());
    Report {
        board: board.to_string(),
        board_arch: answers.first().map(|a| a.reply.arch.clone()),
        slices: answers.len(),
        errors: answers.len() - ok.len(),
        wall_s,
        throughput_per_s: if wall_s > 0.0 {
            answers.len() as f64 / wall_s
        } else {
            0.0
        },
        stages_ms: stages,
        answers,
    }
}

pub fn print(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    for a in &report.answers {
        let r = &a.reply;
        match &r.error {
            Some(e) => writeln!(out, "error   {}: {e}", a.file.display())?,
            None => writeln!(
                out,
                "{:<7} p={:.3}  {:>6} px  {:>8.1} ms on the board  {:>8.1} ms round trip  {}",
                r.verdict,
                r.tumour_probability.unwrap_or(0.0),
                r.area_px.unwrap_or(0),
                r.stages_ms.board,
                a.round_trip_ms,
                a.file.display()
            )?,
        }
    }
    writeln!(
        out,
        "\nboard {} ({}): {} slices, {} errors, {:.2} slices/s over {:.1} s",
        report.board,
        report.board_arch.as_deref().unwrap_or("?"),
        report.slices,
        report.errors,
        report.throughput_per_s,
        report.wall_s
    )?;
    writeln!(
        out,
        "{:<11} {:>5} {:>10} {:>10} {:>10}",
        "stage ms", "n", "p50", "p95", "mean"
    )?;
    for name in [
        "receive",
        "filter",
        "segment",
        "screen",
        "store",
        "board",
        "round_trip",
    ] {
        if let Some(s) = report.stages_ms.get(name) {
            writeln!(
                out,
                "{name:<11} {:>5} {:>10.1} {:>10.1} {:>10.1}",
                s.n, s.p50, s.p95, s.mean
            )?;
        }
    }
    Ok(())
}

/// One row per answer.
pub fn write_csv(report: &Report, path: &Path) -> Result<()> {
    let bad = |e: csv::Error| Error::Hil(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "file",
        "verdict",
        "tumour_probability",
        "area_px",
        "precision",
        "receive_ms",
        "filter_ms",
        "segment_ms",
        "screen_ms",
        "store_ms",
        "board_ms",
        "round_trip_ms",
        "error",
    ])
    .map_err(bad)?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
    for a in &report.answers {
        let r = &a.reply;
        let s = &r.stages_ms;
        w.write_record([
            a.file.display().to_string(),
            r.verdict.clone(),
            r.tumour_probability
                .map_or(String::new(), |p| format!("{p:.4}")),
            r.area_px.map_or(String::new(), |v| v.to_string()),
            r.precision.clone(),
            format!("{:.3}", s.receive),
            opt(s.filter),
            opt(s.segment),
            format!("{:.3}", s.screen),
            format!("{:.3}", s.store),
            format!("{:.3}", s.board),
            format!("{:.3}", a.round_trip_ms),
            r.error.clone().unwrap_or_default(),
        ])
        .map_err(bad)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Hil(format!("{}: {e}", path.display())))?;
    crate::store::write_file_atomically(path, &bytes)
}
