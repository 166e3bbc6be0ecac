//! SIGTERM (systemd stopping the unit) and Ctrl-C both mean: finish the
//! slice in hand, store it, and stop.

use tokio::sync::watch;

/// Resolves when either signal arrives, then tells every receiver of the
/// returned channel.
pub fn on_signal() -> std::io::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        #[cfg(unix)]
        let which = tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = term.recv() => "SIGTERM",
        };
        #[cfg(not(unix))]
        let which = {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        };
        tracing::info!("{which}: finishing the slice in hand, then stopping");
        let _ = tx.send(true);
    });
    Ok(rx)
}
