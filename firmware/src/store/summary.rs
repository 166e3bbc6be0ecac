//! The session summary a clinician opens at the end of a list: a CSV for
//! the spreadsheet and a small HTML page with a thumbnail per slice.

use super::atomic::Batch;
use super::record::{Record, RecordVerdict};
use super::series::{BySeries, SeriesRow};
use crate::error::Result;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const SESSIONS_DIR: &str = "sessions";

/// Where one session's summary went, and its rows per series (which the
/// page leads with and `scan` prints).
#[derive(Debug, Clone)]
pub struct SessionFiles {
    pub csv: PathBuf,
    pub html: PathBuf,
    pub series: Vec<SeriesRow>,
}

/// The records a summary covers, gone through as often as it needs (twice:
/// counts first, then rows), never necessarily all in memory.
pub trait SessionRecords {
    fn each(&self, f: &mut dyn FnMut(&Record)) -> Result<()>;
}

impl SessionRecords for [Record] {
    fn each(&self, f: &mut dyn FnMut(&Record)) -> Result<()> {
        self.iter().for_each(f);
        Ok(())
    }
}

/// The lines a running service appended to `results.jsonl` from byte
/// `from` on: its session, read back from disk at the end instead of held
/// in memory for a run of months.
pub struct LoggedSince {
    pub log: PathBuf,
    pub from: u64,
}

impl SessionRecords for LoggedSince {
    fn each(&self, f: &mut dyn FnMut(&Record)) -> Result<()> {
        super::for_each_record(&self.log, self.from, |r| f(&r))
    }
}

/// Writes `<store>/sessions/<start>.csv` and `.html` for `records` (the
/// session's own results, in the order they finished).
pub fn write_session(
    store: &Path,
    started: SystemTime,
    records: &(impl SessionRecords + ?Sized),
) -> Result<SessionFiles> {
    let dir = store.join(SESSIONS_DIR);
    super::private::create_dir(&dir)?;
    // File names cannot hold ':' on every file system a user copies to.
    let clock = humantime::format_rfc3339_seconds(started)
        .to_string()
        .replace(':', "-");
    // A box without a battery can start two sessions at the same wall time
    // (1970 after each boot, or a clock set back): a later session never
    // takes an earlier one's name.
    let taken =
        |s: &str| dir.join(format!("{s}.csv")).exists() || dir.join(format!("{s}.html")).exists();
    let stamp = std::iter::once(clock.clone())
        .chain((2..).map(|n| format!("{clock}_{n}")))
        .find(|s| !taken(s))
        .expect("an unbounded sequence of names");
    let mut counts = Counts::default();
    let mut by_series = BySeries::default();
    records.each(&mut |r| {
        counts.add(r);
        by_series.add(r);
    })?;
    let mut batch = Batch::new(&dir);
    let files = SessionFiles {
        csv: batch.stage_with(&format!("{stamp}.csv"), |w| write_csv(w, records))?,
        html: batch.stage_with(&format!("{stamp}.html"), |w| {
            write_html(w, &stamp, &counts, by_series.rows(), records)
        })?,
        series: by_series.into_rows(),
    };
    batch.commit()?;
    Ok(files)
}

#[derive(Default)]
struct Counts {
    all: usize,
    tumour: usize,
    clear: usize,
    error: usize,
    caution: usize,
}

impl Counts {
    fn add(&mut self, r: &Record) {
        self.all += 1;
        self.caution += usize::from(r.caution.is_some());
        match r.verdict {
            RecordVerdict::Tumour => self.tumour += 1,
            RecordVerdict::Clear => self.clear += 1,
            RecordVerdict::Error => self.error += 1,
        }
    }
}

/// Runs `row` for every record, stopping at (and returning) the first write
/// error; a read error of the records' source comes back as an I/O error.
fn each_row(
    records: &(impl SessionRecords + ?Sized),
    mut row: impl FnMut(&Record) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut failed = None;
    records
        .each(&mut |r| {
            if failed.is_none() {
                failed = row(r).err();
            }
        })
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    failed.map_or(Ok(()), Err)
}

fn verdict_word(v: RecordVerdict) -> &'static str {
    match v {
        RecordVerdict::Tumour => "tumour",
        RecordVerdict::Clear => "clear",
        RecordVerdict::Error => "error",
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn write_csv(out: &mut dyn Write, records: &(impl SessionRecords + ?Sized)) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let header = [
        "finished_at",
        "input",
        "verdict",
        "tumour_probability",
        "area_px",
        "bbox_x",
        "bbox_y",
        "bbox_w",
        "bbox_h",
        "confidence",
        "filter_ms",
        "segment_ms",
        "total_ms",
        "precision",
        "mask",
        "overlay",
        "error",
        "caution",
    ];
    w.write_record(header)?;
    each_row(records, |r| {
        let b = |i: usize| opt(r.bbox.map(|b| b[i]));
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        w.write_record([
            opt(r.finished_at.clone()),
            r.input.display().to_string(),
            verdict_word(r.verdict).into(),
            opt(r.tumour_probability),
            opt(r.area_px),
            b(0),
            b(1),
            b(2),
            b(3),
            opt(r.confidence),
            opt(r.latency_ms.filter),
            opt(r.latency_ms.segment),
            r.latency_ms.total.to_string(),
            r.precision.clone(),
            opt(path(&r.mask)),
            opt(path(&r.overlay)),
            opt(r.error.clone()),
            opt(r.caution.clone()),
        ])?;
        Ok(())
    })?;
    w.flush()
}

/// Per series: slices, which were read tumour, the largest mask, and any
/// caution, one row each.
fn series_table(rows: &[SeriesRow]) -> String {
    let mut t = String::from(
        "<h2>Series</h2><table><tr><th>series</th><th>slices</th><th>tumour</th>\
         <th>read tumour (place in the series)</th><th>largest mask</th><th>errors</th></tr>",
    );
    for r in rows {
        let word = if r.tumour > 0 { "tumour" } else { "clear" };
        let largest = r.largest.as_ref().map_or(String::new(), |l| {
            format!("{} ({})", escape(&l.area), escape(&l.slice))
        });
        let caution = r.caution.as_deref().map_or(String::new(), |c| {
            format!("<br><span class=\"error\">caution: {}</span>", escape(c))
        });
        t += &format!(
            "<tr><td>{}{caution}</td><td>{}</td><td class=\"{word}\">{}</td><td>{}</td><td>{largest}</td><td>{}</td></tr>",
            escape(&r.label),
            r.slices,
            r.tumour,
            escape(&r.flagged_text()),
            r.errors,
        );
    }
    t + "</table>"
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn write_html(
    page: &mut dyn Write,
    stamp: &str,
    counts: &Counts,
    series: &[SeriesRow],
    records: &(impl SessionRecords + ?Sized),
) -> std::io::Result<()> {
    write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>neuroscreen session {stamp}</title>\
         <style>body{{font-family:sans-serif;background:#111;color:#eee}}\
         table{{border-collapse:collapse}}td,th{{padding:4px 8px;border-bottom:1px solid #333;text-align:left}}\
         .tumour{{color:#ff5a4a;font-weight:bold}}.clear{{color:#5fdc7a}}.error{{color:#ffc800}}\
         img{{width:96px;height:auto}}</style></head><body>\
         <h1>neuroscreen session {stamp}</h1>\
         <p>{} slices: <span class=\"tumour\">{} tumour</span>, <span class=\"clear\">{} clear</span>, \
         <span class=\"error\">{} errors</span>{}. A screening aid, not a diagnosis.</p>\
         {}\
         <h2>Slices</h2><table><tr><th>slice</th><th>input</th><th>verdict</th><th>p(tumour)</th><th>area px</th>\
         <th>ms</th><th>finished</th></tr>",
        counts.all,
        counts.tumour,
        counts.clear,
        counts.error,
        if counts.caution > 0 {
            format!(
                "; <span class=\"error\">{} with a caution</span> (input outside the models' training)",
                counts.caution
            )
        } else {
            String::new()
        },
        series_table(series),
    )?;
    each_row(records, |r| {
        // Overlays sit in the results folder, one level above the page.
        let thumb = r
            .overlay
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| {
                let n = escape(&n.to_string_lossy());
                format!("<a href=\"../{n}\"><img src=\"../{n}\" alt=\"overlay\"></a>")
            })
            .unwrap_or_default();
        let word = verdict_word(r.verdict);
        let caution = r.caution.as_deref().map_or(String::new(), |c| {
            format!("<br><span class=\"error\">caution: {}</span>", escape(c))
        });
        let detail = match (&r.error, r.tumour_probability) {
            (Some(e), _) => format!("<td colspan=\"2\">{}</td>", escape(e)),
            (None, p) => format!(
                "<td>{}</td><td>{}</td>",
                p.map_or(String::new(), |p| format!("{p:.3}")),
                opt(r.area_px)
            ),
        };
        write!(
            page,
            "<tr><td>{thumb}</td><td>{}{caution}</td><td class=\"{word}\">{word}</td>{detail}<td>{:.1}</td><td>{}</td></tr>",
            escape(&r.input.display().to_string()),
            r.latency_ms.total,
            escape(r.finished_at.as_deref().unwrap_or("")),
        )
    })?;
    page.write_all(b"</table></body></html>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        let mut a = Record::new(
            "/in/a, \"odd\".png".into(),
            "f32".into(),
            Default::default(),
        );
        a.verdict = RecordVerdict::Tumour;
        a.tumour_probability = Some(0.9);
        a.area_px = Some(120);
        a.bbox = Some([1, 2, 3, 4]);
        a.overlay = Some("/out/a-123_overlay.png".into());
        a.caution = Some("outside the models' training: a <mosaic>".into());
        let mut b = Record::new("/in/<b>.png".into(), "f32".into(), Default::default());
        b.error = Some("/in/<b>.png: cannot decode".into());
        vec![a, b]
    }

    fn csv_text(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        write_csv(&mut out, records).unwrap();
        out
    }

    fn html_text(stamp: &str, records: &[Record]) -> String {
        let mut counts = Counts::default();
        let mut by_series = BySeries::default();
        records.iter().for_each(|r| {
            counts.add(r);
            by_series.add(r);
        });
        let mut out = Vec::new();
        write_html(&mut out, stamp, &counts, by_series.rows(), records).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_has_a_row_per_slice_and_survives_commas_and_quotes() {
        let text = csv_text(&records());
        let mut reader = csv::Reader::from_reader(text.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][1], "/in/a, \"odd\".png");
        assert_eq!(&rows[0][2], "tumour");
        let bbox: Vec<&str> = rows[0].iter().skip(5).take(4).collect();
        assert_eq!(bbox, ["1", "2", "3", "4"]);
        assert_eq!(&rows[1][2], "error");
        assert_eq!(&rows[1][16], "/in/<b>.png: cannot decode");
        assert_eq!(&rows[0][17], "outside the models' training: a <mosaic>");
        assert_eq!(&rows[1][17], "");
    }

    #[test]
    fn html_counts_escapes_and_links_thumbnails() {
        let page = html_text("2026-11-27T03-00-00Z", &records());
        assert!(page.contains("2 slices"), "{page}");
        assert!(page.contains("1 tumour") && page.contains("1 errors"));
        assert!(page.contains("src=\"../a-123_overlay.png\""));
        assert!(page.contains("/in/&lt;b&gt;.png") && !page.contains("<b>.png"));
        assert!(page.contains("1 with a caution"), "{page}");
        assert!(
            page.contains("caution: outside the models' training: a &lt;mosaic&gt;"),
            "{page}"
        );
        // One series (the folder /in), its tumour slice first of two.
        assert!(
            page.contains(
                "<tr><td>/in<br><span class=\"error\">caution: outside the models' training: \
                 a &lt;mosaic&gt;</span></td><td>2</td><td class=\"tumour\">1</td><td>1 of 2</td>\
                 <td>120 px (a, &quot;odd&quot;.png)</td><td>1</td></tr>"
            ),
            "{page}"
        );
        let plain = html_text("2026-11-27T03-00-00Z", &records()[1..]);
        assert!(!plain.contains("caution"), "{plain}");
    }

    #[test]
    fn session_files_land_in_the_sessions_folder() {
        let d = tempfile::tempdir().unwrap();
        let files = write_session(d.path(), SystemTime::UNIX_EPOCH, &records()[..]).unwrap();
        assert_eq!(
            files.csv,
            d.path().join("sessions/1970-01-01T00-00-00Z.csv")
        );
        assert!(std::fs::read_to_string(&files.html)
            .unwrap()
            .contains("<table>"));
    }

    #[test]
    fn a_second_session_at_the_same_wall_time_keeps_the_first() {
        let d = tempfile::tempdir().unwrap();
        let first = write_session(d.path(), SystemTime::UNIX_EPOCH, &records()[..1]).unwrap();
        let second = write_session(d.path(), SystemTime::UNIX_EPOCH, &records()[1..]).unwrap();
        assert_eq!(
            second.csv,
            d.path().join("sessions/1970-01-01T00-00-00Z_2.csv")
        );
        assert_ne!(
            std::fs::read(&first.csv).unwrap(),
            std::fs::read(&second.csv).unwrap()
        );
        assert!(first.html.exists() && second.html.exists());
    }

    #[test]
    fn a_service_session_is_read_back_from_the_log_from_its_start() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join(super::super::RESULTS_LOG);
        let line = |r: &Record| serde_json::to_string(r).unwrap();
        let [a, b] = <[Record; 2]>::try_from(records()).unwrap();
        super::super::atomic::append_line(&log, &line(&b)).unwrap();
        let from = super::super::log_end(&log).unwrap();
        super::super::atomic::append_line(&log, &line(&a)).unwrap();
        let files =
            write_session(d.path(), SystemTime::UNIX_EPOCH, &LoggedSince { log, from }).unwrap();
        let page = std::fs::read_to_string(&files.html).unwrap();
        assert!(
            page.contains("1 slices") && page.contains("1 tumour"),
            "{page}"
        );
        assert!(
            !page.contains("&lt;b&gt;"),
            "the earlier session's line is not in it"
        );
        let csv = std::fs::read_to_string(&files.csv).unwrap();
        assert_eq!(csv.lines().count(), 2, "{csv}");
    }
}
