//! A received data set as the Part 10 file the inbox takes: preamble, file
//! meta group (SOP class and instance from the C-STORE request, the
//! negotiated transfer syntax, the sender's AE title), then the data set
//! exactly as it came over the wire.

use super::dimse::Command;
use dicom_object::FileMetaTableBuilder;

/// Why the file meta group could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Part10Error {
    #[error("cannot build the file meta group: {0}")]
    Build(#[source] dicom_object::meta::Error),
    #[error("cannot write the file meta group: {0}")]
    Write(#[source] dicom_object::meta::Error),
}

pub fn part10(
    command: &Command,
    transfer_syntax: &str,
    calling: &str,
    data_set: &[u8],
) -> Result<Vec<u8>, Part10Error> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(command.sop_class.as_str())
        .media_storage_sop_instance_uid(command.sop_instance.as_str())
        .transfer_syntax(transfer_syntax)
        .source_application_entity_title(calling)
        .build()
        .map_err(Part10Error::Build)?;
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    meta.write(&mut file).map_err(Part10Error::Write)?;
    file.extend_from_slice(data_set);
    Ok(file)
}

/// A UID as PS3.5 9.1 has it: digits and dots, at most 64 characters. The
/// file in the inbox is named after it, so nothing else may pass.
pub fn is_uid(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !text.starts_with('.')
        && !text.ends_with('.')
        && !text.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uids_name_files() {
        assert!(is_uid("1.2.840.10008.5.1.4.1.1.4"));
        for bad in ["", "../etc/passwd", "1..2", "1.2.", "1.2a", &"1".repeat(65)] {
            assert!(!is_uid(bad), "{bad}");
        }
    }

    #[test]
    fn the_file_opens_with_the_meta_we_gave() {
        let command = Command {
            field: super::super::dimse::C_STORE_RQ,
            message_id: 1,
            sop_class: "1.2.840.10008.5.1.4.1.1.4".into(),
            sop_instance: "1.2.3".into(),
            has_data_set: true,
        };
        // An empty data set in explicit VR little endian is valid.
        let bytes = part10(&command, "1.2.840.10008.1.2.1", "SCANNER", &[]).unwrap();
        assert!(crate::dicom::is_dicom(&bytes));
        let object = dicom_object::OpenFileOptions::new()
            .from_reader(&bytes[128..])
            .unwrap();
        assert_eq!(object.meta().media_storage_sop_instance_uid(), "1.2.3");
        assert_eq!(object.meta().transfer_syntax(), "1.2.840.10008.1.2.1");
        assert_eq!(
            object.meta().source_application_entity_title(),
            Some("SCANNER")
        );
    }
}
