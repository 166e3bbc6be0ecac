//! What touches hardware: display targets for embedded-graphics (PNG
//! snapshot, Linux framebuffer, SPI LCD), V4L2 camera capture and frame
//! decoding. Knows nothing about models.

#[cfg(feature = "gpio-button")]
pub mod button;
pub mod camera;
mod error;
pub mod framebuffer;
pub mod panel;
pub mod snapshot;
#[cfg(feature = "spi-lcd")]
pub mod spi_lcd;

pub use error::Error;
/// The board's results carry its one error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
pub use framebuffer::Framebuffer;
pub use panel::Panel;
pub use snapshot::PngSnapshot;
