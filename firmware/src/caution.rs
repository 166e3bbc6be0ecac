//! Why a result should be read with care, said beside its verdict (never
//! instead of it): what the DICOM header tells of the acquisition
//! ([`crate::dicom::acquisition`]) and, for any input, a slice coarser than
//! what the models take in. The models learnt from 256-512 px slices
//! brought down to their input; a 64x64 slice (an EPI matrix, a crop) is
//! brought up to it, with less detail than they ever saw.

use models::SliceImage;

/// What every caution starts with; the reasons follow, "; "-separated.
pub const PREFIX: &str = "outside the models' training: ";

/// The reason a `width` x `height` slice is coarse for a model taking
/// `input` (width, height), if it is.
pub fn coarse(width: u32, height: u32, input: (u32, u32)) -> Option<String> {
    (width < input.0 || height < input.1).then(|| {
        format!(
            "coarse: {width}x{height} px, under the models' {}x{} px input",
            input.0, input.1
        )
    })
}

/// The caution a result of `slice` carries for a model taking `input`:
/// the reasons its DICOM header gave (none for other files), then its size.
pub fn of_slice(header: &[String], slice: &SliceImage, input: (u32, u32)) -> Option<String> {
    let mut reasons = header.to_vec();
    reasons.extend(coarse(slice.width, slice.height, input));
    text(&reasons)
}

/// The caution for these reasons, or none when there are none.
pub fn text(reasons: &[String]) -> Option<String> {
    (!reasons.is_empty()).then(|| format!("{PREFIX}{}", reasons.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_under_the_input_on_either_side_is_coarse() {
        let input = (128, 128);
        assert_eq!(
            coarse(64, 64, input).as_deref(),
            Some("coarse: 64x64 px, under the models' 128x128 px input")
        );
        assert!(coarse(128, 96, input).is_some());
        assert!(coarse(96, 128, input).is_some());
        assert_eq!(coarse(128, 128, input), None);
        assert_eq!(coarse(512, 256, input), None);
    }

    #[test]
    fn reasons_become_one_caution() {
        assert_eq!(text(&[]), None);
        let two = ["a phase image".to_string(), "coarse: 1x1 px".to_string()];
        assert_eq!(
            text(&two).as_deref(),
            Some("outside the models' training: a phase image; coarse: 1x1 px")
        );
    }
}
