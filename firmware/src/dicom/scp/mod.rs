//! The DICOM receiver: a C-STORE SCP (and C-ECHO) on the service's tokio
//! runtime with dicom-ul. Each object stored is written atomically into the
//! inbox (a dot-named temporary, fsync, rename, fsync of the folder), where
//! the inbox watcher picks it up like any file renamed in; the receiver
//! itself never screens, so a slow model never stalls a scanner's send
//! beyond the disk write.
//!
//! Only listed calling AE titles calling our AE title get an association;
//! only MR storage SOP classes and transfer syntaxes this build decodes are
//! accepted; at most `max_associations` run at once (more are rejected as
//! transient, local limit exceeded, so a scanner retries); an association
//! idle longer than `idle_timeout_s`, lasting longer than
//! `association_timeout_s` or sending an object over `max_object_bytes` is
//! aborted. None of these disturbs other associations or the screening.

mod association;
mod deliver;
mod dimse;

use crate::config::DicomConfig;
use crate::error::{Error, Result};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, Pdu,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};

/// Verification, and the MR image storage SOP classes.
const ABSTRACT_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.1",           // Verification
    "1.2.840.10008.5.1.4.1.1.4",   // MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1", // Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4", // Legacy Converted Enhanced MR Image Storage
];

/// Transfer syntaxes a scanner may send, in our order of preference; only
/// those whose pixel data this build decodes are offered (JPEG-LS needs
/// CharLS, which we do not link, so it is refused at negotiation).
const CANDIDATE_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.1",    // explicit VR little endian
    "1.2.840.10008.1.2",      // implicit VR little endian
    "1.2.840.10008.1.2.2",    // explicit VR big endian (retired)
    "1.2.840.10008.1.2.5",    // RLE lossless
    "1.2.840.10008.1.2.4.70", // JPEG lossless, first-order prediction
    "1.2.840.10008.1.2.4.57", // JPEG lossless
    "1.2.840.10008.1.2.4.50", // JPEG baseline
    "1.2.840.10008.1.2.4.51", // JPEG extended
    "1.2.840.10008.1.2.4.90", // JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
    "1.2.840.10008.1.2.4.80", // JPEG-LS lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS near-lossless
];

/// The transfer syntaxes the receiver accepts.
pub fn decodable_syntaxes() -> Vec<String> {
    CANDIDATE_SYNTAXES
        .iter()
        .filter(|uid| {
            TransferSyntaxRegistry
                .get(uid)
                .is_some_and(|ts| ts.can_decode_all())
        })
        .map(|uid| uid.to_string())
        .collect()
}

/// What every association needs, shared.
struct Settings {
    ae_title: String,
    allowed: Vec<String>,
    transfer_syntaxes: Vec<String>,
    idle_timeout_s: u64,
    association_timeout_s: u64,
    max_object_bytes: u64,
    inbox: PathBuf,
}

/// Binds the port (so a bad address stops the service at start, naming
/// it) and returns the address bound and the task that serves it until
/// `stop` turns true.
pub async fn start(
    config: &DicomConfig,
    inbox: PathBuf,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let wanted = SocketAddr::new(config.bind, config.port);
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .map_err(|e| Error::Receiver(format!("cannot listen on {wanted}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Receiver(format!("{wanted}: {e}")))?;
    let settings = Arc::new(Settings {
        ae_title: config.ae_title.trim().to_string(),
        allowed: config
            .allowed_calling_ae_titles
            .iter()
            .map(|t| t.trim().to_string())
            .collect(),
        transfer_syntaxes: decodable_syntaxes(),
        idle_timeout_s: config.idle_timeout_s,
        association_timeout_s: config.association_timeout_s,
        max_object_bytes: config.max_object_bytes,
        inbox,
    });
    tracing::info!(
        "DICOM receiver listening on {bound} as AE '{}' (transfer syntaxes: {})",
        settings.ae_title,
        settings.transfer_syntaxes.join(", ")
    );
    let limit = config.max_associations;
    let task = tokio::spawn(listen(listener, settings, limit, stop));
    Ok((bound, task))
}

async fn listen(
    listener: tokio::net::TcpListener,
    settings: Arc<Settings>,
    limit: usize,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limit));
    // Associations live in the set: when the listener ends (or is
    // aborted), they end with it.
    let mut associations = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            Some(_) = associations.join_next(), if !associations.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!("DICOM receiver: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let settings = settings.clone();
                associations.spawn(async move {
                    association::serve(socket, peer, settings).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(
                    peer = %peer,
                    "DICOM association rejected: {limit} already open (dicom.max_associations)"
                );
                associations.spawn(reject_busy(socket));
            }
        }
    }
    tracing::info!("DICOM receiver stopped");
}

/// Reads the association request and rejects it as transient (local limit
/// exceeded), so the scanner knows to try again later.
async fn reject_busy(mut socket: tokio::net::TcpStream) {
    let read_request = async {
        let mut header = [0u8; 6];
        socket.read_exact(&mut header).await?;
        let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        if header[0] != 0x01 || length > 64 * 1024 {
            return Err(std::io::Error::other("not an association request"));
        }
        let mut body = vec![0u8; length as usize];
        socket.read_exact(&mut body).await
    };
    if tokio::time::timeout(Duration::from_secs(5), read_request)
        .await
        .is_ok_and(|r| r.is_ok())
    {
        let mut bytes = Vec::new();
        let rejection = Pdu::AssociationRJ(AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceProviderPresentation(
                AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
            ),
        });
        if dicom_ul::write_pdu(&mut bytes, &rejection).is_ok() {
            let _ = socket.write_all(&bytes).await;
        }
    }
    let _ = socket.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn we_offer_what_we_decode_and_not_jpeg_ls() {
        let offered = decodable_syntaxes();
        for uid in [
            "1.2.840.10008.1.2.1",
            "1.2.840.10008.1.2",
            "1.2.840.10008.1.2.5",
            "1.2.840.10008.1.2.4.90",
        ] {
            assert!(offered.iter().any(|o| o == uid), "{uid}: {offered:?}");
        }
        assert!(!offered.iter().any(|o| o == "1.2.840.10008.1.2.4.80"));
    }
}
