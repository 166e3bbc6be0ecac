//! DIMSE command sets (PS3.7): always implicit VR little endian. Requests
//! are parsed with dicom-object; the two responses we send are written by
//! hand, which keeps the group length exact.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

pub const C_STORE_RQ: u16 = 0x0001;
pub const C_STORE_RSP: u16 = 0x8001;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_ECHO_RSP: u16 = 0x8030;
/// CommandDataSetType: no data set follows.
pub const NO_DATA_SET: u16 = 0x0101;

pub const SUCCESS: u16 = 0x0000;
/// Refused: out of resources (the inbox could not be written).
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// Error: cannot understand (the data set does not parse).
pub const CANNOT_UNDERSTAND: u16 = 0xC000;

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub field: u16,
    pub message_id: u16,
    pub sop_class: String,
    pub sop_instance: String,
    pub has_data_set: bool,
}

/// Why a command set is refused; the association is aborted with this.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("unreadable command set: {0}")]
    Lengths(#[from] crate::dicom::lengths::LengthError),
    #[error("unreadable command set: {0}")]
    Parse(#[from] dicom_object::ReadError),
    /// A required element (named as the standard names it) is missing or
    /// not a number.
    #[error("command set without {0}")]
    Missing(&'static str),
}

pub fn parse(bytes: &[u8]) -> Result<Command, CommandError> {
    let ts = dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased();
    crate::dicom::lengths::check_data_set(bytes, crate::dicom::lengths::Encoding::IMPLICIT_LE)?;
    let object = InMemDicomObject::read_dataset_with_ts(bytes, &ts)?;
    let uint = |tag, name: &'static str| {
        object
            .element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u16>().ok())
            .ok_or(CommandError::Missing(name))
    };
    let text = |tag| crate::dicom::header::text(&object, tag).unwrap_or_default();
    let field = uint(tags::COMMAND_FIELD, "CommandField")?;
    Ok(Command {
        field,
        message_id: uint(tags::MESSAGE_ID, "MessageID")?,
        sop_class: text(tags::AFFECTED_SOP_CLASS_UID),
        sop_instance: text(tags::AFFECTED_SOP_INSTANCE_UID),
        has_data_set: uint(tags::COMMAND_DATA_SET_TYPE, "CommandDataSetType")? != NO_DATA_SET,
    })
}

/// The response to `request` with `status` (and a comment for failures).
pub fn response(request: &Command, status: u16, comment: Option<&str>) -> Vec<u8> {
    let field = match request.field {
        C_ECHO_RQ => C_ECHO_RSP,
        _ => C_STORE_RSP,
    };
    let mut body = Vec::new();
    if !request.sop_class.is_empty() {
        put(&mut body, 0x0002, uid(&request.sop_class));
    }
    put(&mut body, 0x0100, field.to_le_bytes().to_vec());
    put(&mut body, 0x0120, request.message_id.to_le_bytes().to_vec());
    put(&mut body, 0x0800, NO_DATA_SET.to_le_bytes().to_vec());
    put(&mut body, 0x0900, status.to_le_bytes().to_vec());
    if let Some(comment) = comment {
        // ErrorComment is LO: at most 64 characters.
        let mut text: Vec<u8> = comment.bytes().filter(|b| *b != b'\\').take(64).collect();
        if text.len() % 2 == 1 {
            text.push(b' ');
        }
        put(&mut body, 0x0902, text);
    }
    if !request.sop_instance.is_empty() {
        put(&mut body, 0x1000, uid(&request.sop_instance));
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    put(&mut out, 0x0000, (body.len() as u32).to_le_bytes().to_vec());
    out.extend(body);
    out
}

fn uid(value: &str) -> Vec<u8> {
    let mut bytes = value.as_bytes().to_vec();
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    bytes
}

/// One implicit VR little endian element of group 0000.
fn put(out: &mut Vec<u8>, element: u16, value: Vec<u8>) {
    out.extend(0u16.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend((value.len() as u32).to_le_bytes());
    out.extend(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_response_parses_back_with_its_status() {
        let request = Command {
            field: C_STORE_RQ,
            message_id: 7,
            sop_class: "1.2.840.10008.5.1.4.1.1.4".into(),
            sop_instance: "1.2.3.4".into(),
            has_data_set: true,
        };
        let bytes = response(&request, CANNOT_UNDERSTAND, Some("bad data set"));
        let ts = dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased();
        let object = InMemDicomObject::read_dataset_with_ts(bytes.as_slice(), &ts).unwrap();
        let int = |tag| -> u16 { object.element(tag).unwrap().to_int().unwrap() };
        assert_eq!(int(tags::COMMAND_FIELD), C_STORE_RSP);
        assert_eq!(int(tags::MESSAGE_ID_BEING_RESPONDED_TO), 7);
        assert_eq!(int(tags::STATUS), CANNOT_UNDERSTAND);
        assert_eq!(int(tags::COMMAND_DATA_SET_TYPE), NO_DATA_SET);
        let instance = object.element(tags::AFFECTED_SOP_INSTANCE_UID).unwrap();
        assert_eq!(instance.to_str().unwrap().trim_end_matches('\0'), "1.2.3.4");
        let length: u32 = object
            .element(tags::COMMAND_GROUP_LENGTH)
            .unwrap()
            .to_int()
            .unwrap();
        assert_eq!(length as usize, bytes.len() - 12);
    }

    #[test]
    fn a_refused_command_set_says_what_is_wrong() {
        let request = Command {
            field: C_ECHO_RQ,
            message_id: 3,
            sop_class: String::new(),
            sop_instance: String::new(),
            has_data_set: false,
        };
        // A response answers MessageID with MessageIDBeingRespondedTo.
        let e = parse(&response(&request, SUCCESS, None)).unwrap_err();
        assert!(matches!(e, CommandError::Missing("MessageID")), "{e:?}");
        assert_eq!(e.to_string(), "command set without MessageID");
        let mut lying = Vec::new();
        put(&mut lying, 0x0100, C_ECHO_RQ.to_le_bytes().to_vec());
        lying[4..8].copy_from_slice(&1_000_000u32.to_le_bytes());
        let e = parse(&lying).unwrap_err();
        assert!(
            matches!(
                e,
                CommandError::Lengths(crate::dicom::lengths::LengthError::TooLong {
                    length: 1_000_000,
                    ..
                })
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("unreadable command set: element (0000,0100)"),
            "{e}"
        );
    }
}
