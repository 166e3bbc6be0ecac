//! What touches hardware: display targets for embedded-graphics, and (to
//! come) camera capture and board profiles. Knows nothing about models.

mod error;
pub mod framebuffer;
pub mod snapshot;

pub use error::Error;
pub use framebuffer::Framebuffer;
pub use snapshot::PngSnapshot;
