//! Where a frame lies: classic images state position, orientation and
//! spacing at the top level; enhanced (multi-frame) images put them in the
//! per-frame or shared functional groups. Per-frame wins over shared wins
//! over top level, as PS3.3 C.7.6.16 has it.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

pub struct Geometry {
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    /// [between rows, between columns] in mm, when plausible.
    pub spacing: Option<[f64; 2]>,
}

pub fn geometry(object: &InMemDicomObject, index: u32) -> Geometry {
    let position = lookup(
        object,
        index,
        tags::PLANE_POSITION_SEQUENCE,
        tags::IMAGE_POSITION_PATIENT,
    )
    .and_then(|v| <[f64; 3]>::try_from(v.as_slice()).ok())
    .filter(|v| v.iter().all(|x| x.is_finite()));
    let orientation = lookup(
        object,
        index,
        tags::PLANE_ORIENTATION_SEQUENCE,
        tags::IMAGE_ORIENTATION_PATIENT,
    )
    .and_then(|v| <[f64; 6]>::try_from(v.as_slice()).ok())
    .filter(|v| v.iter().all(|x| x.is_finite()));
    let spacing = lookup(
        object,
        index,
        tags::PIXEL_MEASURES_SEQUENCE,
        tags::PIXEL_SPACING,
    )
    .and_then(|v| <[f64; 2]>::try_from(v.as_slice()).ok())
    .filter(|s| crate::config::check_spacing(*s).is_ok());
    Geometry {
        position,
        orientation,
        spacing,
    }
}

fn lookup(
    object: &InMemDicomObject,
    index: u32,
    macro_sequence: dicom_core::Tag,
    attribute: dicom_core::Tag,
) -> Option<Vec<f64>> {
    let in_group = |group: dicom_core::Tag, item: usize| {
        let group_item = items(object, group)?.get(item)?;
        let macro_item = items(group_item, macro_sequence)?.first()?;
        floats(macro_item, attribute)
    };
    in_group(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, index as usize)
        .or_else(|| in_group(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, 0))
        .or_else(|| floats(object, attribute))
}

fn items(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<&[InMemDicomObject]> {
    object.element_opt(tag).ok().flatten()?.items()
}

fn floats(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<Vec<f64>> {
    object
        .element_opt(tag)
        .ok()
        .flatten()?
        .to_multi_float64()
        .ok()
}

/// Where along the slice normal a frame lies: the position projected on
/// row x column. Comparable only between frames of one orientation.
pub fn along_normal(position: [f64; 3], orientation: [f64; 6]) -> f64 {
    let [r0, r1, r2, c0, c1, c2] = orientation;
    let normal = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
    normal.iter().zip(position).map(|(n, p)| n * p).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_object::mem::InMemElement;

    fn ds(tag: dicom_core::Tag, values: &[f64]) -> InMemElement {
        let text = values.iter().map(|v| v.to_string()).collect();
        DataElement::new(tag, VR::DS, PrimitiveValue::Strs(text))
    }

    fn seq(tag: dicom_core::Tag, items: Vec<InMemDicomObject>) -> InMemElement {
        DataElement::new(tag, VR::SQ, dicom_core::value::DataSetSequence::from(items))
    }

    #[test]
    fn per_frame_groups_win_over_shared_and_top_level() {
        let frame = |z: f64| {
            InMemDicomObject::from_element_iter([seq(
                tags::PLANE_POSITION_SEQUENCE,
                vec![InMemDicomObject::from_element_iter([ds(
                    tags::IMAGE_POSITION_PATIENT,
                    &[0.0, 0.0, z],
                )])],
            )])
        };
        let shared = InMemDicomObject::from_element_iter([seq(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([ds(
                tags::PIXEL_SPACING,
                &[0.5, 0.6],
            )])],
        )]);
        let object = InMemDicomObject::from_element_iter([
            ds(tags::PIXEL_SPACING, &[9.0, 9.0]),
            ds(tags::IMAGE_ORIENTATION_PATIENT, &[1., 0., 0., 0., 1., 0.]),
            seq(
                tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
                vec![frame(-4.0), frame(2.5)],
            ),
            seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]),
        ]);
        let g = geometry(&object, 1);
        assert_eq!(g.position, Some([0.0, 0.0, 2.5]));
        assert_eq!(g.spacing, Some([0.5, 0.6]));
        assert_eq!(g.orientation, Some([1., 0., 0., 0., 1., 0.]));
        assert_eq!(
            along_normal(g.position.unwrap(), g.orientation.unwrap()),
            2.5
        );
    }

    #[test]
    fn an_implausible_spacing_is_no_spacing() {
        let object = InMemDicomObject::from_element_iter([ds(tags::PIXEL_SPACING, &[0.0, 0.5])]);
        assert_eq!(geometry(&object, 0).spacing, None);
    }
}
