//! `neuroscreen run`: the long-running service.
//!
//! Sources (paths from the command line, the inbox backlog, then inbox
//! events) feed a bounded queue; one blocking thread runs inference (tract
//! is synchronous) and stores each result; the display shows the newest.
//! A full queue holds the sources back, so no file is ever dropped.

mod camera;
mod display;
mod inbox;
mod shutdown;

use crate::config::ApplianceConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::inputs;
use crate::screener::{Screener, Summary, Tally};
use crate::store::{retention, summary, ResultsStore};
use display::Counters;
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::time::SystemTime;
use tokio::sync::{mpsc, watch};

/// Results between two retention passes.
const RETENTION_EVERY: usize = 200;

pub struct RunOptions {
    /// Files and folders to screen before (and besides) the inbox.
    pub paths: Vec<PathBuf>,
    /// Screen the given paths and the inbox backlog, then stop instead of
    /// watching.
    pub once: bool,
}

/// What a finished session did.
pub struct SessionReport {
    pub summary: Summary,
    pub skipped_as_done: usize,
    pub left_queued: usize,
    pub session_html: Option<PathBuf>,
    /// Inputs whose result could not be stored (disk full, folder gone);
    /// they keep no result and are screened at the next start.
    pub store_failures: usize,
}

pub fn run(config: &ApplianceConfig, engine: Engine, options: RunOptions) -> Result<SessionReport> {
    let store = ResultsStore::open(&config.store.dir)?;
    crate::store::private::create_dir(&config.inbox.dir)?;
    let own_inputs = config.inbox.own_input_dirs();
    retention::apply(
        store.dir(),
        &config.store.retention,
        &own_inputs,
        store.running_s(),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    runtime.block_on(serve(config, engine, store, options))
}

async fn serve(
    config: &ApplianceConfig,
    engine: Engine,
    store: ResultsStore,
    options: RunOptions,
) -> Result<SessionReport> {
    let started = SystemTime::now();
    let stop = shutdown::on_signal().map_err(|e| Error::io("signal handler", e))?;
    let ledger = store.ledger()?;
    // This session's results are the lines appended from here on; the
    // summary reads them back at the end rather than holding them.
    let session_from = crate::store::log_end(&store.log_path())?;
    let source = format!("inbox {}", config.inbox.dir.display());
    let camera = if options.once {
        if config.camera.enabled {
            tracing::info!("camera: not used with --once");
        }
        None
    } else {
        camera::start(config, store.dir())
    };
    let (shown, display_task) = display::start(config, source, camera.as_ref().map(|c| c.status()));

    // The watcher starts before the backlog is listed, so a file arriving in
    // between is seen at least once; the ledger makes "once" exact.
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let mut watcher = if options.once {
        None
    } else {
        let mut w = notify::recommended_watcher(move |event| {
            let _ = event_tx.send(event);
        })
        .map_err(|e| watch_error(config, e))?;
        w.watch(&config.inbox.dir, RecursiveMode::Recursive)
            .map_err(|e| watch_error(config, e))?;
        Some(w)
    };

    // The DICOM receiver writes into the inbox, so it runs only while the
    // inbox is watched.
    let receiver = if config.dicom.enabled && !options.once {
        let received = config.inbox.received_dir();
        crate::store::private::create_dir(&received)?;
        let (_, task) = crate::dicom::scp::start(&config.dicom, received, stop.clone()).await?;
        Some(task)
    } else {
        None
    };

    let (job_tx, job_rx) = mpsc::channel::<PathBuf>(config.pipeline.queue);
    let mut backlog = inputs::expand(&options.paths)?;
    backlog.extend(inputs::expand(std::slice::from_ref(&config.inbox.dir))?);
    // Said once the backlog is listed: a file written into the inbox after
    // this line reaches the service through the watcher only, whole (a test
    // that wrote a slice slowly right after "running" raced the listing).
    tracing::info!(
        inbox = %config.inbox.dir.display(),
        store = %store.dir().display(),
        already_done = ledger.len(),
        "neuroscreen running"
    );
    let producer = tokio::spawn(produce(
        backlog,
        event_rx,
        job_tx,
        stop.clone(),
        options.once,
    ));

    let store_dir = store.dir().to_path_buf();
    let worker_stop = stop.clone();
    let retention_policy = config.store.retention;
    let own_inputs = config.inbox.own_input_dirs();
    let spacing = config.inbox.pixel_spacing_mm;
    let secondary_capture = config.dicom.secondary_capture;
    let limits = config.inputs;
    let store = std::sync::Arc::new(store);
    let worker_store = std::sync::Arc::clone(&store);
    let worker = tokio::task::spawn_blocking(move || {
        let screener = Screener::new(std::sync::Arc::new(engine), &worker_store)
            .with_limits(limits)
            .with_spacing(spacing)
            .with_secondary_capture(secondary_capture);
        work(
            &screener,
            ledger,
            job_rx,
            worker_stop,
            shown,
            retention_policy,
            own_inputs,
        )
    });
    let outcome = worker
        .await
        .map_err(|e| Error::io("inference thread", std::io::Error::other(e.to_string())))?;
    producer.abort();
    if let Some(task) = receiver {
        task.abort();
    }
    if let Some(camera) = camera {
        camera.stop().await;
    }
    drop(watcher.take());
    if let Some(task) = display_task {
        // The worker dropped its sender: the sink draws the last result, then ends.
        let _ = task.await;
    }
    let (screened, tally, skipped_as_done, left_queued, store_failures) = outcome?;

    let session_html = if screened == 0 {
        None
    } else {
        let session = summary::LoggedSince {
            log: store_dir.join(crate::store::RESULTS_LOG),
            from: session_from,
        };
        Some(summary::write_session(&store_dir, started, &session)?.html)
    };
    retention::apply(
        &store_dir,
        &config.store.retention,
        &config.inbox.own_input_dirs(),
        store.running_s(),
    )?;
    Ok(SessionReport {
        summary: tally.summary(),
        skipped_as_done,
        left_queued,
        session_html,
        store_failures,
    })
}

fn watch_error(config: &ApplianceConfig, e: notify::Error) -> Error {
    Error::io(
        &config.inbox.dir,
        std::io::Error::other(format!("cannot watch the inbox: {e}")),
    )
}

/// Sends the backlog, then (unless `once`) every slice the inbox receives,
/// until told to stop. Waiting on a full queue is how back-pressure works.
async fn produce(
    backlog: Vec<PathBuf>,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    jobs: mpsc::Sender<PathBuf>,
    mut stop: watch::Receiver<bool>,
    once: bool,
) {
    for path in backlog {
        if !send(&jobs, path, &mut stop).await {
            return;
        }
    }
    if once {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            event = events.recv() => match event {
                None => return,
                Some(Err(e)) => tracing::warn!("inbox watcher: {e}"),
                Some(Ok(event)) => {
                    for path in inbox::arrived(&event) {
                        if !send(&jobs, path, &mut stop).await {
                            return;
                        }
                    }
                }
            },
        }
    }
}

async fn send(
    jobs: &mpsc::Sender<PathBuf>,
    path: PathBuf,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        sent = jobs.send(path) => sent.is_ok(),
        _ = stop.changed() => false,
    }
}

/// Results stored this session and their tally, inputs skipped as already
/// done, inputs left queued, inputs whose result could not be stored. Only
/// counts: a service runs for months, and what it keeps per slice must not
/// grow with them (the records themselves are in the log).
type WorkOutcome = (usize, Tally, usize, usize, usize);

/// The inference thread: one slice at a time, each stored before the next
/// starts, so a stop between slices leaves nothing half done.
fn work(
    screener: &Screener<'_>,
    mut ledger: crate::store::Ledger,
    mut jobs: mpsc::Receiver<PathBuf>,
    stop: watch::Receiver<bool>,
    shown: watch::Sender<display::Shown>,
    retention_policy: retention::Retention,
    own_inputs: Vec<PathBuf>,
) -> Result<WorkOutcome> {
    let store = screener.store;
    let mut screened = 0usize;
    let mut tally = Tally::default();
    let mut store_failures = 0;
    let mut skipped = 0;
    let mut series = crate::store::series::CurrentSeries::default();
    while let Some(path) = jobs.blocking_recv() {
        if *stop.borrow() {
            // Not screened now; an inbox file is screened at the next start.
            let left = 1 + drain(&mut jobs);
            return Ok((screened, tally, skipped, left, store_failures));
        }
        let input = screener.read(&path);
        if let Some(sha) = &input.sha256 {
            if ledger.contains(&path, sha) {
                skipped += 1;
                tracing::debug!(input = %path.display(), "already has a result");
                continue;
            }
        }
        // A slice both the watcher and the backlog listing saw is queued
        // twice; if it was moved away after its first result, the second
        // turn finds nothing, which is not an error (the soak met this).
        if input.was_gone() && ledger.has_path(&path) {
            skipped += 1;
            tracing::debug!(input = %path.display(), "gone after its result");
            continue;
        }
        let sha = input.sha256.clone();
        let done = |p: &std::path::Path| sha.as_ref().is_some_and(|s| ledger.contains(p, s));
        let results = match screener.screen_except(input, &done) {
            Ok(r) => r,
            Err(e) => {
                // The store itself failed (disk full, folder gone): the input
                // keeps no result, so it is screened again at the next start.
                tracing::error!(input = %path.display(), "cannot store the result: {e}");
                store_failures += 1;
                continue;
            }
        };
        if results.is_empty() {
            // Every frame of a multi-frame file already had a result.
            skipped += 1;
        }
        for record in results {
            ledger.insert(&record);
            tally.add(&record);
            tracing::info!("{}", crate::screener::line(&record));
            let s = tally.summary();
            let counters = Counters {
                seen: s.inputs,
                flagged: s.tumour,
                errors: s.errors + store_failures,
                series: Some(series.add(&record).clone()),
            };
            let _ = shown.send(Some((record, counters)));
            screened += 1;
            if screened.is_multiple_of(RETENTION_EVERY) {
                if let Err(e) = retention::apply(
                    store.dir(),
                    &retention_policy,
                    &own_inputs,
                    store.running_s(),
                ) {
                    tracing::warn!("retention: {e}");
                }
            }
        }
    }
    Ok((screened, tally, skipped, 0, store_failures))
}

fn drain(jobs: &mut mpsc::Receiver<PathBuf>) -> usize {
    jobs.close();
    let mut n = 0;
    while jobs.try_recv().is_ok() {
        n += 1;
    }
    n
}
