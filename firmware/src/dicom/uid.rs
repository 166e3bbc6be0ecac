//! UIDs for the objects we write, under the `2.25` arc (a UUID as one
//! decimal number, PS3.5 B.2), which needs no registered root. They are
//! derived from what the object is (the source it refers to, its content),
//! so screening the same input again gives the same UIDs, and every SEG of
//! one source series lands in one SEG series.

use sha2::{Digest, Sha256};

pub fn derived(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed so ("ab","c") and ("a","bc") differ.
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // RFC 4122 version 4 and variant bits, as a UUID would carry.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uids_are_valid_stable_and_distinct() {
        let a = derived(&[b"1.2.3", b"seg"]);
        assert_eq!(a, derived(&[b"1.2.3", b"seg"]));
        assert_ne!(a, derived(&[b"1.2.3", b"sc"]));
        assert_ne!(derived(&[b"ab", b"c"]), derived(&[b"a", b"bc"]));
        assert!(a.len() <= 64 && a.starts_with("2.25."), "{a}");
        assert!(a[5..].chars().all(|c| c.is_ascii_digit()) && !a[5..].starts_with('0'));
    }
}
