//! A time limit per stage of one slice. Neither a decoder nor tract can be
//! interrupted, so a stage runs on a thread of its own and, past the limit,
//! is abandoned: the slice gets an error naming the stage and the caller
//! goes on with the next one while the stuck thread finishes (or not) on
//! its own. Its result, if it ever comes, is dropped: only the caller
//! stores anything, so an abandoned stage cannot write a late result.

use crate::error::{Error, Result};
use std::path::Path;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct Watchdog {
    limit: Option<Duration>,
}

impl Watchdog {
    pub fn new(limit: Option<Duration>) -> Self {
        Self { limit }
    }

    /// `work` for `path` within the limit; with no limit, on this thread.
    pub fn run<T, F>(&self, path: &Path, stage: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let Some(limit) = self.limit else {
            return work();
        };
        let (tx, rx) = sync_channel(1);
        #[cfg(debug_assertions)]
        let hook = test_hook::stall_for(path, stage);
        let spawned = std::thread::Builder::new()
            .name(format!("neuroscreen-{stage}"))
            .spawn(move || {
                #[cfg(debug_assertions)]
                if let Some(pause) = hook {
                    std::thread::sleep(pause);
                }
                // The receiver is gone when the stage was abandoned.
                let _ = tx.send(work());
            });
        if let Err(e) = spawned {
            return Err(Error::io(path, e));
        }
        match rx.recv_timeout(limit) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                tracing::error!(input = %path.display(), stage, limit_s = limit.as_secs_f64(), "stage abandoned");
                Err(Error::Stalled {
                    path: path.to_path_buf(),
                    stage,
                    limit_s: limit.as_secs_f64(),
                })
            }
            // The stage's thread panicked before it could answer.
            Err(RecvTimeoutError::Disconnected) => Err(Error::Crashed {
                path: path.to_path_buf(),
                stage,
            }),
        }
    }
}

/// Debug builds only (the end-to-end tests run those): an input whose file
/// name is `NEUROSCREEN_TEST_STALL` pauses `NEUROSCREEN_TEST_STALL_S`
/// seconds (default 600) before its decoding, the way a pathological file
/// would. Release builds have no such switch.
#[cfg(debug_assertions)]
mod test_hook {
    use std::path::Path;
    use std::time::Duration;

    pub fn stall_for(path: &Path, stage: &str) -> Option<Duration> {
        let name = std::env::var_os("NEUROSCREEN_TEST_STALL")?;
        if stage != "decoding" || path.file_name() != Some(name.as_os_str()) {
            return None;
        }
        let secs = std::env::var("NEUROSCREEN_TEST_STALL_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600.0);
        Some(Duration::from_secs_f64(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_stage_past_its_limit_is_abandoned_and_named() {
        let dog = Watchdog::new(Some(Duration::from_millis(50)));
        let started = Instant::now();
        let e = dog
            .run(Path::new("slow.png"), "screening", || {
                std::thread::sleep(Duration::from_secs(5));
                Ok(1)
            })
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(4), "waited for it");
        assert!(e.contains("slow.png") && e.contains("screening"), "{e}");
        assert!(e.contains("0.05 s limit"), "{e}");
        // The next stage runs as usual.
        assert_eq!(
            dog.run(Path::new("next.png"), "decoding", || Ok(2))
                .unwrap(),
            2
        );
    }

    #[test]
    fn a_panicking_stage_becomes_an_error() {
        let dog = Watchdog::new(Some(Duration::from_secs(5)));
        let e = dog
            .run::<(), _>(Path::new("bad.png"), "decoding", || panic!("decoder bug"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.png") && e.contains("decoding"), "{e}");
    }

    #[test]
    fn without_a_limit_the_stage_runs_here() {
        let here = std::thread::current().id();
        let ran_on = Watchdog::new(None)
            .run(Path::new("a.png"), "decoding", move || {
                Ok(std::thread::current().id())
            })
            .unwrap();
        assert_eq!(ran_on, here);
    }
}
