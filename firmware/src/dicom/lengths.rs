//! Declared element lengths checked against the bytes that are really there,
//! before dicom-rs builds an object from them.
//!
//! dicom-parser sizes a value's buffer from the length its header declares
//! and fills it with zeros before reading (`resize`), so a 2 KB file that
//! declares a 3 GB element makes the service touch 3 GB: on a 4 GB board
//! that is the kernel's OOM killer, not an error line. The check bounds
//! every allocation the parser makes by the size of the input, which the
//! inbox and the DICOM receiver already bound.
//!
//! The data set is tokenised by dicom-parser's own `DataSetReader`, the one
//! dicom-object builds from: it yields each element's header before it
//! reads the value (and each pixel fragment's item header before the
//! fragment), so a length is checked where the parser stands, in its own
//! reading of sequences, delimiters, unknown VRs and encapsulated pixel
//! data. A walk of our own over the headers disagreed with the parser three
//! times in the fuzzer's first minutes (an unknown VR's length form, a
//! sequence delimiter's length, undefined-length UN), and each disagreement
//! was a file whose lying length went unchecked. The meta group is walked
//! here, as dicom-object's `FileMetaTable::read_from` reads it.

use dicom_core::{Tag, VR};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_parser::dataset::read::DataSetReaderOptions;
use dicom_parser::dataset::DataToken;
use dicom_parser::DataSetReader;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

const UNDEFINED: u32 = u32::MAX;
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
/// Deflated data sets: the bytes on disk say nothing about what inflating
/// them gives, so they are refused rather than inflated without a bound.
const DEFLATED: [&str; 2] = ["1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"];

/// Why the length check refuses a stream: it names the element and where
/// it is, or the transfer syntax it will not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LengthError {
    /// A deflated transfer syntax (`uid`): its inflated size is unknown.
    #[error("deflated data sets ({uid}) are not read: their inflated size cannot be checked")]
    Deflated { uid: String },
    /// An element header or pixel fragment at byte `at` (counted in the
    /// file, preamble included) declaring `length` bytes where only `left`
    /// follow.
    #[error(
        "element ({:04X},{:04X}) at byte {at} declares {length} bytes but only {left} follow",
        .tag.0,
        .tag.1
    )]
    TooLong {
        tag: Tag,
        at: usize,
        length: u32,
        left: usize,
    },
}

/// How a data set's element headers are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub explicit_vr: bool,
    pub big_endian: bool,
}

impl Encoding {
    pub const IMPLICIT_LE: Encoding = Encoding {
        explicit_vr: false,
        big_endian: false,
    };
    pub const EXPLICIT_LE: Encoding = Encoding {
        explicit_vr: true,
        big_endian: false,
    };

    /// The native transfer syntax with this layout (what the parser needs
    /// to read a data set's structure; pixel encodings do not change it).
    fn native_syntax(self) -> &'static str {
        match (self.explicit_vr, self.big_endian) {
            (false, _) => IMPLICIT_LE,
            (true, true) => EXPLICIT_BE,
            (true, false) => EXPLICIT_LE,
        }
    }

    /// The layout a transfer syntax gives its data set; an error for the
    /// deflated ones.
    pub fn of(transfer_syntax: &str) -> Result<Encoding, LengthError> {
        let uid = transfer_syntax.trim_end_matches(['\0', ' ']);
        if DEFLATED.contains(&uid) {
            return Err(LengthError::Deflated {
                uid: uid.to_string(),
            });
        }
        Ok(match uid {
            IMPLICIT_LE => Encoding::IMPLICIT_LE,
            EXPLICIT_BE => Encoding {
                explicit_vr: true,
                big_endian: true,
            },
            _ => Encoding::EXPLICIT_LE,
        })
    }
}

/// A Part 10 stream as dicom-rs reads it ("DICM", the file meta group in
/// explicit VR little endian, then the data set in the meta group's
/// transfer syntax). Bytes that do not start with the magic are left to the
/// parser, which refuses them. `preamble` is how many bytes came before
/// `body` in the file, so a message gives the byte in the file.
pub fn check_file(body: &[u8], preamble: usize) -> Result<(), LengthError> {
    let Some(rest) = body.strip_prefix(b"DICM") else {
        return Ok(());
    };
    // The meta group as dicom-object reads it (`FileMetaTable::read_from`):
    // (0002,0000) first, holding the group's length in bytes, then elements
    // of any group (an off-group tag is skipped, not refused) until that
    // many bytes are read; the data set starts where the last one ends.
    // Stopping at the first tag outside group 0002 instead let the data set
    // go unchecked (the fuzzer found a 416-byte file doing that).
    let mut meta = Walk::new(rest, preamble + 4);
    let Some(first) = meta.header() else {
        return Ok(());
    };
    if first.tag != Tag(0x0002, 0x0000) || first.length != 4 {
        // The parser refuses a meta group that does not start so.
        return Ok(());
    }
    let value = meta.value(&first)?;
    let group_length = u32::from_le_bytes(value.try_into().expect("4 bytes"));
    let mut read: u32 = 0;
    let mut transfer_syntax = None;
    while read < group_length {
        let start = meta.at;
        let Some(header) = meta.header() else {
            return Ok(());
        };
        if header.length == UNDEFINED {
            // Refused by the parser too.
            return Ok(());
        }
        let value = meta.value(&header)?;
        if header.tag == Tag(0x0002, 0x0010) {
            transfer_syntax = Some(String::from_utf8_lossy(value).into_owned());
        }
        read = read.saturating_add((meta.at - start) as u32);
    }
    let Some(ts) = transfer_syntax else {
        // The parser refuses a meta group without a transfer syntax.
        return Ok(());
    };
    Encoding::of(&ts)?;
    check_tokens(&rest[meta.at..], &ts, meta.origin + meta.at)
}

/// A bare data set (as the network delivers one) in `encoding`.
pub fn check_data_set(bytes: &[u8], encoding: Encoding) -> Result<(), LengthError> {
    check_tokens(bytes, encoding.native_syntax(), 0)
}

/// Reads `bytes` as dicom-object does after the meta group (the same
/// reader, options and transfer syntax) and refuses the first element
/// header or pixel fragment whose defined length is longer than what is
/// left, before the parser is asked for its value. Values that fit are read
/// and dropped: the extra work is one parse, and its memory at most the
/// largest value. Where the parser fails or the syntax is unknown to it,
/// dicom-object fails at the same point, so that is left to it.
fn check_tokens(bytes: &[u8], transfer_syntax: &str, origin: usize) -> Result<(), LengthError> {
    let uid = transfer_syntax.trim_end_matches(['\0', ' ']);
    let Some(ts) = TransferSyntaxRegistry.get(uid) else {
        return Ok(());
    };
    let consumed = Rc::new(Cell::new(0));
    let source = Counting {
        bytes,
        consumed: consumed.clone(),
    };
    let Ok(mut reader) =
        DataSetReader::new_with_ts_options(source, ts, DataSetReaderOptions::default())
    else {
        return Ok(());
    };
    // Fragments of encapsulated pixel data are items whose value the
    // parser reads (into a buffer of the item's length); items of other
    // sequences are containers.
    let mut in_pixel_sequence = false;
    loop {
        let at = consumed.get();
        let token = match reader.next() {
            Some(Ok(token)) => token,
            None | Some(Err(_)) => return Ok(()),
        };
        let (tag, length) = match token {
            DataToken::ElementHeader(header) => (header.tag, header.len),
            DataToken::ItemStart { len } if in_pixel_sequence => (Tag(0xfffe, 0xe000), len),
            DataToken::PixelSequenceStart => {
                in_pixel_sequence = true;
                continue;
            }
            DataToken::SequenceEnd => {
                in_pixel_sequence = false;
                continue;
            }
            _ => continue,
        };
        let left = bytes.len() - consumed.get();
        if let Some(length) = length.get().filter(|&n| n as usize > left) {
            return Err(LengthError::TooLong {
                tag,
                at: origin + at,
                length,
                left,
            });
        }
    }
}

/// The bytes as a reader that tells how many have been read: dicom-parser
/// reads its source exactly (no read-ahead), so that is its position.
struct Counting<'a> {
    bytes: &'a [u8],
    consumed: Rc<Cell<usize>>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let at = self.consumed.get();
        let n = (&self.bytes[at..]).read(buf)?;
        self.consumed.set(at + n);
        Ok(n)
    }
}

struct Header {
    tag: Tag,
    length: u32,
    /// Where the header starts, counted from the start of the file's magic
    /// (or the data set) so a message points at the bytes.
    at: usize,
}

/// Element headers of the meta group, read as dicom-object reads them:
/// always explicit VR little endian, whatever the data set's syntax.
struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Added to positions in messages: where `bytes` starts in the input.
    origin: usize,
}

impl<'a> Walk<'a> {
    fn new(bytes: &'a [u8], origin: usize) -> Self {
        Walk {
            bytes,
            at: 0,
            origin,
        }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            self.bytes.get(at..at + 2)?.try_into().ok()?,
        ))
    }

    fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.bytes.get(at..at + 4)?.try_into().ok()?,
        ))
    }

    /// The next element's header; `None` where the bytes end inside one
    /// (no length to trust, so nothing for the parser to over-allocate:
    /// whether such a tail is an error is the parser's call).
    fn header(&mut self) -> Option<Header> {
        let at = self.at;
        let (group, element) = (self.u16(at)?, self.u16(at + 2)?);
        let tag = Tag(group, element);
        // Item and delimiter tags carry no VR in any encoding.
        let (length, size) = if group == 0xfffe {
            (self.u32(at + 4)?, 8)
        } else {
            let code: [u8; 2] = self.bytes.get(at + 4..at + 6)?.try_into().ok()?;
            // dicom-encoding reads a VR code it does not know as UN, with
            // the reserved bytes and 32-bit length PS3.5 7.1.2 gives VRs
            // defined later; it does not refuse it. Read the same way, or a
            // 3.7 GB length behind garbage VR bytes goes unchecked (the
            // fuzzer found one: regression-unknown-vr-length.dcm).
            let vr = VR::from_binary(code).unwrap_or(VR::UN);
            if long_length(vr) {
                (self.u32(at + 8)?, 12)
            } else {
                (u32::from(self.u16(at + 6)?), 8)
            }
        };
        self.at += size;
        Some(Header {
            tag,
            length,
            at: self.origin + at,
        })
    }

    /// Refuses a defined length longer than what is left.
    fn fits(&self, header: &Header) -> Result<(), LengthError> {
        if header.length != UNDEFINED && header.length as usize > self.left() {
            return Err(LengthError::TooLong {
                tag: header.tag,
                at: header.at,
                length: header.length,
                left: self.left(),
            });
        }
        Ok(())
    }

    /// Steps over the value; an undefined length has no value to skip.
    fn value(&mut self, header: &Header) -> Result<&'a [u8], LengthError> {
        self.fits(header)?;
        if header.length == UNDEFINED {
            return Ok(&[]);
        }
        let start = self.at;
        self.at += header.length as usize;
        Ok(&self.bytes[start..self.at])
    }
}

/// The VRs whose explicit header has two reserved bytes and a 32-bit length.
fn long_length(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        OB | OD | OF | OL | OV | OW | SQ | SV | UC | UN | UR | UT | UV
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explicit VR little endian element header.
    fn explicit(group: u16, element: u16, vr: &[u8; 2], length: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(group.to_le_bytes());
        b.extend(element.to_le_bytes());
        b.extend(vr);
        if long_length(VR::from_binary(*vr).unwrap()) {
            b.extend([0, 0]);
            b.extend(length.to_le_bytes());
        } else {
            b.extend((length as u16).to_le_bytes());
        }
        b
    }

    fn implicit(group: u16, element: u16, length: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(group.to_le_bytes());
        b.extend(element.to_le_bytes());
        b.extend(length.to_le_bytes());
        b
    }

    fn file(transfer_syntax: &str, data_set: &[u8]) -> Vec<u8> {
        file_with_meta(transfer_syntax, &[], data_set)
    }

    /// "DICM", the meta group ((0002,0000) with the group's length, then
    /// `meta_before` and the transfer syntax), then the data set.
    fn file_with_meta(transfer_syntax: &str, meta_before: &[u8], data_set: &[u8]) -> Vec<u8> {
        let mut uid = transfer_syntax.as_bytes().to_vec();
        if uid.len() % 2 == 1 {
            uid.push(0);
        }
        let mut group = meta_before.to_vec();
        group.extend(explicit(0x0002, 0x0010, b"UI", uid.len() as u32));
        group.extend(uid);
        let mut b = b"DICM".to_vec();
        b.extend(explicit(0x0002, 0x0000, b"UL", 4));
        b.extend((group.len() as u32).to_le_bytes());
        b.extend(group);
        b.extend(data_set);
        b
    }

    #[test]
    fn honest_lengths_pass() {
        let mut ds = explicit(0x0010, 0x0010, b"PN", 4);
        ds.extend(b"DOE^");
        ds.extend(explicit(0x7fe0, 0x0010, b"OW", 8));
        ds.extend([0; 8]);
        assert_eq!(check_file(&file("1.2.840.10008.1.2.1", &ds), 0), Ok(()));
    }

    #[test]
    fn a_length_past_the_end_is_named_with_its_tag_and_place() {
        let mut ds = explicit(0x0010, 0x0010, b"PN", 4);
        ds.extend(b"DOE^");
        ds.extend(explicit(0x0009, 0x1001, b"OB", 3_000_000_000));
        ds.extend([0; 16]);
        let e = check_file(&file("1.2.840.10008.1.2.1", &ds), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(0009,1001)") && e.contains("3000000000"), "{e}");
        assert!(e.contains("only 16 follow"), "{e}");
        // The header starts after DICM (4), the group length (8 + 4), the
        // transfer syntax (8 + 20) and the name (8 + 4).
        assert!(e.contains("at byte 56"), "{e}");
        let e = check_file(&file("1.2.840.10008.1.2.1", &ds), 128)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at byte 184"), "{e}");
    }

    #[test]
    fn implicit_and_big_endian_lengths_are_read_as_such() {
        let mut ds = implicit(0x0010, 0x0010, 4);
        ds.extend(b"DOE^");
        assert_eq!(check_file(&file("1.2.840.10008.1.2", &ds), 0), Ok(()));
        ds.extend(implicit(0x0009, 0x1001, 1 << 30));
        assert!(check_file(&file("1.2.840.10008.1.2", &ds), 0).is_err());

        // 4 bytes little endian is 1 GiB big endian: the encoding matters.
        let mut be = Vec::new();
        be.extend(0x0010u16.to_be_bytes());
        be.extend(0x0010u16.to_be_bytes());
        be.extend(b"PN");
        be.extend(4u16.to_be_bytes());
        be.extend(b"DOE^");
        assert_eq!(check_file(&file("1.2.840.10008.1.2.2", &be), 0), Ok(()));
        be[6..8].copy_from_slice(&4u16.to_le_bytes());
        assert!(check_file(&file("1.2.840.10008.1.2.2", &be), 0).is_err());
    }

    #[test]
    fn lengths_inside_sequences_are_checked() {
        // Explicit: an undefined-length sequence whose one item lies.
        let mut ds = explicit(0x0008, 0x1140, b"SQ", UNDEFINED);
        ds.extend(implicit(0xfffe, 0xe000, UNDEFINED));
        ds.extend(explicit(0x0008, 0x1155, b"UI", 4));
        ds.extend(b"1.2\0");
        ds.extend(implicit(0xfffe, 0xe00d, 0));
        ds.extend(implicit(0xfffe, 0xe0dd, 0));
        assert_eq!(check_file(&file("1.2.840.10008.1.2.1", &ds), 0), Ok(()));
        let mut lying = ds.clone();
        lying[12 + 8 + 6..12 + 8 + 8].copy_from_slice(&0xfff0u16.to_le_bytes());
        assert!(check_file(&file("1.2.840.10008.1.2.1", &lying), 0).is_err());

        // Implicit: the dictionary says (0008,1140) is a sequence, so a
        // defined-length one is walked into, not skipped whole.
        let mut item = implicit(0x0008, 0x1155, 2_000_000_000);
        item.extend(b"1.2\0");
        let mut ds = implicit(0x0008, 0x1140, 8 + item.len() as u32);
        ds.extend(implicit(0xfffe, 0xe000, item.len() as u32));
        ds.extend(item);
        let e = check_file(&file("1.2.840.10008.1.2", &ds), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(0008,1155)"), "{e}");
    }

    #[test]
    fn fragments_of_encapsulated_pixel_data_are_skipped_not_parsed() {
        // The fragment's bytes would read as a lying header if walked.
        let fragment = [
            0x09, 0x00, 0x01, 0x10, b'O', b'B', 0, 0, 0xff, 0xff, 0xff, 0x7f,
        ];
        let mut ds = explicit(0x7fe0, 0x0010, b"OB", UNDEFINED);
        ds.extend(implicit(0xfffe, 0xe000, 0));
        ds.extend(implicit(0xfffe, 0xe000, fragment.len() as u32));
        ds.extend(fragment);
        ds.extend(implicit(0xfffe, 0xe0dd, 0));
        assert_eq!(check_file(&file("1.2.840.10008.1.2.4.50", &ds), 0), Ok(()));
        let mut lying = ds.clone();
        let at = 12 + 8 + 4;
        lying[at..at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
        assert!(check_file(&file("1.2.840.10008.1.2.4.50", &lying), 0).is_err());
    }

    /// dicom-parser 0.10 reads what an undefined-length UN holds in the
    /// file's own encoding (PS3.5 says implicit VR little endian): the check
    /// reads it the same way, since the parser's reading is what allocates.
    /// An explicit element in there is checked as such; an implicit one is
    /// misread by the parser as a 3 MB value, and refused.
    #[test]
    fn undefined_length_un_is_read_as_dicom_rs_reads_it() {
        let un = |element: Vec<u8>| {
            let mut ds = explicit(0x0009, 0x1010, b"UN", UNDEFINED);
            ds.extend(implicit(0xfffe, 0xe000, UNDEFINED));
            ds.extend(element);
            ds.extend(b"1.2\0");
            ds.extend(implicit(0xfffe, 0xe00d, 0));
            ds.extend(implicit(0xfffe, 0xe0dd, 0));
            ds.extend(explicit(0x0010, 0x0010, b"PN", 4));
            ds.extend(b"DOE^");
            check_file(&file("1.2.840.10008.1.2.1", &ds), 0)
        };
        assert_eq!(un(explicit(0x0009, 0x1011, b"UI", 4)), Ok(()));
        let e = un(implicit(0x0009, 0x1011, 4)).unwrap_err().to_string();
        assert!(e.contains("(0009,1011)"), "{e}");
    }

    /// A sequence delimiter's length field is not a value length: the
    /// parser reads on straight after it (a walk that skipped it missed
    /// the lying element behind, regression-delimiter-length.dcm).
    #[test]
    fn a_delimiter_length_is_not_skipped() {
        let mut ds = explicit(0x0008, 0x1140, b"SQ", UNDEFINED);
        ds.extend(implicit(0xfffe, 0xe000, UNDEFINED));
        ds.extend(implicit(0xfffe, 0xe00d, 0));
        ds.extend(implicit(0xfffe, 0xe0dd, 12));
        ds.extend(explicit(0x0009, 0x1001, b"OB", 3_000_000_000));
        ds.extend([0; 16]);
        let e = check_file(&file("1.2.840.10008.1.2.1", &ds), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(0009,1001)"), "{e}");
    }

    /// An unknown VR code has the long form, as dicom-encoding reads it: an
    /// honest length there passes (read in the short form, the value's
    /// bytes would be walked as headers) and a lying one is refused.
    #[test]
    fn an_unknown_vr_code_has_the_reserved_bytes_and_a_32_bit_length() {
        let unknown = |length: u32| {
            let mut b = Vec::new();
            b.extend(0x0009u16.to_le_bytes());
            b.extend(0x1001u16.to_le_bytes());
            b.extend(b"ZZ");
            b.extend([0, 0]);
            b.extend(length.to_le_bytes());
            b
        };
        let mut ds = unknown(4);
        ds.extend(b"abcd");
        ds.extend(explicit(0x0010, 0x0010, b"PN", 4));
        ds.extend(b"DOE^");
        assert_eq!(check_file(&file("1.2.840.10008.1.2.1", &ds), 0), Ok(()));
        let mut lying = unknown(3_000_000_000);
        lying.extend([0; 16]);
        let e = check_file(&file("1.2.840.10008.1.2.1", &lying), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(0009,1001)") && e.contains("3000000000"), "{e}");

        // The file the fuzzer found: a one-byte shift left the bytes
        // E0 00 where a VR belongs and FE FF DD E0 (3.7 GB) as the length.
        let found = include_bytes!("../../../fuzz/corpus/dicom/regression-unknown-vr-length.dcm");
        let e = check_file(&found[128..], 128).unwrap_err().to_string();
        assert!(e.contains("declares 3724541440 bytes"), "{e}");
    }

    /// dicom-object reads the meta group by its declared length and skips
    /// an element of another group inside it: the data set after it is
    /// still checked.
    #[test]
    fn the_meta_group_ends_where_its_length_says_not_at_another_group() {
        let mut off_group = explicit(0x0000, 0x0001, b"OB", 2);
        off_group.extend([0, 1]);
        let mut ds = explicit(0x0010, 0x0010, b"PN", 4);
        ds.extend(b"DOE^");
        let honest = file_with_meta("1.2.840.10008.1.2.1", &off_group, &ds);
        assert_eq!(check_file(&honest, 0), Ok(()));
        ds.extend(explicit(0x0009, 0x1001, b"OB", 3_000_000_000));
        ds.extend([0; 16]);
        let lying = file_with_meta("1.2.840.10008.1.2.1", &off_group, &ds);
        let e = check_file(&lying, 0).unwrap_err().to_string();
        assert!(e.contains("(0009,1001)"), "{e}");

        // A lying length inside the meta group itself, off-group or not.
        let mut meta = explicit(0x0000, 0x0001, b"OB", 1 << 30);
        meta.extend([0, 1]);
        let e = check_file(&file_with_meta("1.2.840.10008.1.2.1", &meta, &[]), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(0000,0001)"), "{e}");

        // The file the fuzzer found: (0000,0001) second in the meta group,
        // a 3.5 GB length behind an unknown VR in the data set.
        let found = include_bytes!("../../../fuzz/corpus/dicom/regression-meta-off-group-tag.dcm");
        let e = check_file(&found[128..], 128).unwrap_err().to_string();
        assert!(e.contains("declares"), "{e}");
    }

    #[test]
    fn a_refusal_carries_the_tag_the_place_and_both_lengths() {
        let mut ds = explicit(0x0010, 0x0010, b"PN", 4);
        ds.extend(b"DOE^");
        ds.extend(explicit(0x0009, 0x1001, b"OB", 3_000_000_000));
        ds.extend([0; 16]);
        assert_eq!(
            check_file(&file("1.2.840.10008.1.2.1", &ds), 128),
            Err(LengthError::TooLong {
                tag: Tag(0x0009, 0x1001),
                at: 184,
                length: 3_000_000_000,
                left: 16,
            })
        );
        assert_eq!(
            check_data_set(&ds, Encoding::EXPLICIT_LE),
            Err(LengthError::TooLong {
                tag: Tag(0x0009, 0x1001),
                at: 12,
                length: 3_000_000_000,
                left: 16,
            })
        );
        assert_eq!(
            Encoding::of("1.2.840.10008.1.2.8.1\0"),
            Err(LengthError::Deflated {
                uid: "1.2.840.10008.1.2.8.1".into()
            })
        );
    }

    #[test]
    fn deflated_data_sets_are_refused_by_name() {
        let e = check_file(&file("1.2.840.10008.1.2.1.99", &[1, 2, 3]), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("deflated"), "{e}");
    }

    #[test]
    fn a_header_cut_short_is_left_to_the_parser() {
        let ds = explicit(0x0010, 0x0010, b"PN", 4)[..5].to_vec();
        assert_eq!(check_file(&file("1.2.840.10008.1.2.1", &ds), 0), Ok(()));
    }
}
