//! Data: the LGG layout reader, the patient-level split, augmentation, and
//! the phantom generator that writes the same layout.

pub mod augment;
pub mod labels;
pub mod lgg;
pub mod phantom;
pub mod reslice;
pub mod source;
pub mod split;
pub mod warp;
