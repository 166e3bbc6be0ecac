//! One association: negotiation (AE titles, SOP classes, transfer
//! syntaxes), then C-ECHO and C-STORE until the scanner releases it.
//! Every way it can go wrong ends this association only, with a log line
//! that names the peer.

use super::dimse::{self, Command};
use super::{deliver, Settings};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::server::AccessControl;
use dicom_ul::association::Association;
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PDataValue, PDataValueType, PresentationContextResultReason,
    UserIdentity,
};
use dicom_ul::{Pdu, ServerAssociationOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Who may associate: our called title, a listed calling title.
struct Gate {
    settings: Arc<Settings>,
    peer: SocketAddr,
}

impl AccessControl for Gate {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        let (calling, called) = (calling_ae_title.trim(), called_ae_title.trim());
        if called != this_ae_title.trim() {
            tracing::warn!(
                peer = %self.peer,
                "DICOM association rejected: it calls AE title '{called}', we are '{}'",
                this_ae_title.trim()
            );
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if !self.settings.allowed.iter().any(|a| a == calling) {
            tracing::warn!(
                peer = %self.peer,
                "DICOM association rejected: calling AE title '{calling}' is not in \
                 dicom.allowed_calling_ae_titles"
            );
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// The pending request of a C-STORE whose data set is still arriving.
struct Pending {
    command: Command,
    context: u8,
    data: Vec<u8>,
}

pub async fn serve(socket: tokio::net::TcpStream, peer: SocketAddr, settings: Arc<Settings>) {
    let idle = Duration::from_secs(settings.idle_timeout_s);
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(Gate {
            settings: settings.clone(),
            peer,
        })
        .ae_title(settings.ae_title.clone())
        .read_timeout(idle)
        .write_timeout(idle);
    for syntax in super::ABSTRACT_SYNTAXES {
        options = options.with_abstract_syntax(*syntax);
    }
    for syntax in &settings.transfer_syntaxes {
        options = options.with_transfer_syntax(syntax.clone());
    }
    let mut association = match options.establish_async(socket).await {
        Ok(a) => a,
        Err(e) => {
            // Rejections were logged by the gate with their reason.
            tracing::debug!(peer = %peer, "DICOM association not established: {e}");
            return;
        }
    };
    let calling = association.peer_ae_title().trim().to_string();
    tracing::info!(peer = %peer, calling = %calling, "DICOM association accepted");
    for pc in association.presentation_contexts() {
        match pc.reason {
            PresentationContextResultReason::Acceptance => {}
            // The scanner then says it has no presentation context for
            // those images; say here why.
            PresentationContextResultReason::TransferSyntaxesNotSupported => tracing::warn!(
                calling = %calling,
                "DICOM presentation context {} for {} refused: TransferSyntaxesNotSupported \
                 (we decode {})",
                pc.id,
                pc.abstract_syntax,
                settings.transfer_syntaxes.join(", ")
            ),
            // Senders propose every storage class they know; only MR is ours.
            ref other => tracing::debug!(
                calling = %calling,
                "DICOM presentation context {} for {} refused: {other:?}",
                pc.id,
                pc.abstract_syntax
            ),
        }
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(settings.association_timeout_s);
    let mut command_bytes = Vec::new();
    let mut pending: Option<Pending> = None;
    loop {
        let pdu = match tokio::time::timeout_at(deadline, association.receive()).await {
            Err(_) => {
                tracing::warn!(
                    calling = %calling,
                    "DICOM association aborted: it lasted longer than dicom.association_timeout_s ({} s)",
                    settings.association_timeout_s
                );
                let _ = association.abort().await;
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    calling = %calling,
                    "DICOM association ended: {e} (dicom.idle_timeout_s is {} s)",
                    settings.idle_timeout_s
                );
                return;
            }
            Ok(Ok(pdu)) => pdu,
        };
        match pdu {
            Pdu::PData { data } => {
                for value in data {
                    let step = handle(
                        value,
                        &mut command_bytes,
                        &mut pending,
                        &settings,
                        &association,
                        &calling,
                    )
                    .await;
                    match step {
                        Step::Continue => {}
                        Step::Reply { context, bytes } => {
                            let reply = Pdu::PData {
                                data: vec![PDataValue {
                                    presentation_context_id: context,
                                    value_type: PDataValueType::Command,
                                    is_last: true,
                                    data: bytes,
                                }],
                            };
                            if let Err(e) = association.send(&reply).await {
                                tracing::warn!(calling = %calling, "DICOM association ended: cannot reply: {e}");
                                return;
                            }
                        }
                        Step::Abort(reason) => {
                            tracing::warn!(calling = %calling, "DICOM association aborted: {reason}");
                            let _ = association.abort().await;
                            return;
                        }
                    }
                }
            }
            Pdu::ReleaseRQ => {
                let _ = association.send(&Pdu::ReleaseRP).await;
                tracing::info!(calling = %calling, "DICOM association released");
                return;
            }
            Pdu::AbortRQ { source } => {
                tracing::warn!(calling = %calling, "DICOM association aborted by the peer: {source:?}");
                return;
            }
            other => {
                tracing::warn!(
                    calling = %calling,
                    "DICOM association aborted: unexpected {}",
                    other.short_description()
                );
                let _ = association.abort().await;
                return;
            }
        }
    }
}

enum Step {
    Continue,
    Reply { context: u8, bytes: Vec<u8> },
    Abort(String),
}

async fn handle<S>(
    value: PDataValue,
    command_bytes: &mut Vec<u8>,
    pending: &mut Option<Pending>,
    settings: &Settings,
    association: &dicom_ul::association::AsyncServerAssociation<S>,
    calling: &str,
) -> Step
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let context = value.presentation_context_id;
    match value.value_type {
        PDataValueType::Command => {
            if command_bytes.len() + value.data.len() > 64 * 1024 {
                return Step::Abort("a command set over 64 KiB".into());
            }
            command_bytes.extend(value.data);
            if !value.is_last {
                return Step::Continue;
            }
            let command = match dimse::parse(command_bytes) {
                Ok(c) => c,
                Err(e) => return Step::Abort(e.to_string()),
            };
            command_bytes.clear();
            match (command.field, command.has_data_set) {
                (dimse::C_ECHO_RQ, _) => {
                    tracing::info!(calling = %calling, "C-ECHO answered");
                    Step::Reply {
                        context,
                        bytes: dimse::response(&command, dimse::SUCCESS, None),
                    }
                }
                (dimse::C_STORE_RQ, true) => {
                    *pending = Some(Pending {
                        command,
                        context,
                        data: Vec::new(),
                    });
                    Step::Continue
                }
                (field, _) => Step::Abort(format!("unsupported DIMSE command 0x{field:04x}")),
            }
        }
        PDataValueType::Data => {
            let Some(store) = pending.as_mut() else {
                return Step::Abort("data without a C-STORE request".into());
            };
            let size = store.data.len() as u64 + value.data.len() as u64;
            if size > settings.max_object_bytes {
                return Step::Abort(format!(
                    "object {} is larger than dicom.max_object_bytes ({} bytes)",
                    store.command.sop_instance, settings.max_object_bytes
                ));
            }
            store.data.extend(value.data);
            if !value.is_last {
                return Step::Continue;
            }
            let store = pending.take().expect("checked above");
            let Some(syntax) = association
                .presentation_contexts()
                .iter()
                .find(|pc| pc.id == store.context)
                .map(|pc| pc.transfer_syntax.clone())
            else {
                return Step::Abort(format!("unknown presentation context {}", store.context));
            };
            let (status, comment) = accept(&store, &syntax, settings, calling).await;
            Step::Reply {
                context,
                bytes: dimse::response(&store.command, status, comment.as_deref()),
            }
        }
    }
}

/// Checks the data set parses, then writes it into the inbox. Returns the
/// C-STORE status and, for a failure, why.
async fn accept(
    store: &Pending,
    syntax: &str,
    settings: &Settings,
    calling: &str,
) -> (u16, Option<String>) {
    let instance = &store.command.sop_instance;
    let refuse = |status: u16, reason: String| {
        tracing::warn!(calling = %calling, sop_instance = %instance, "C-STORE refused: {reason}");
        (status, Some(reason))
    };
    if !deliver::is_uid(instance) {
        return refuse(
            dimse::CANNOT_UNDERSTAND,
            format!("'{instance}' is not a SOP instance UID"),
        );
    }
    let Some(ts) = TransferSyntaxRegistry.get(syntax) else {
        return refuse(
            dimse::CANNOT_UNDERSTAND,
            format!("unknown transfer syntax {syntax}"),
        );
    };
    // Parsing up front refuses a broken object to the sender, who can still
    // do something about it, instead of leaving it to fail in the inbox.
    let lengths = crate::dicom::lengths::Encoding::of(syntax).and_then(|encoding| {
        crate::dicom::lengths::check_data_set(store.data.as_slice(), encoding)
    });
    if let Err(reason) = lengths {
        return refuse(
            dimse::CANNOT_UNDERSTAND,
            format!("the data set does not parse: {reason}"),
        );
    }
    if let Err(e) = InMemDicomObject::read_dataset_with_ts(store.data.as_slice(), ts) {
        return refuse(
            dimse::CANNOT_UNDERSTAND,
            format!("the data set does not parse: {e}"),
        );
    }
    let file = match deliver::part10(&store.command, syntax, calling, &store.data) {
        Ok(f) => f,
        Err(e) => return refuse(dimse::CANNOT_UNDERSTAND, e.to_string()),
    };
    let inbox = settings.inbox.clone();
    let name = format!("{instance}.dcm");
    let written = tokio::task::spawn_blocking(move || {
        crate::store::write_file_atomically(&inbox.join(&name), &file).map(|_| inbox.join(name))
    })
    .await;
    match written {
        Ok(Ok(path)) => {
            tracing::info!(calling = %calling, file = %path.display(), "C-STORE received");
            (dimse::SUCCESS, None)
        }
        Ok(Err(e)) => refuse(
            dimse::OUT_OF_RESOURCES,
            format!("cannot write the inbox: {e}"),
        ),
        Err(e) => refuse(dimse::OUT_OF_RESOURCES, format!("writer task failed: {e}")),
    }
}
