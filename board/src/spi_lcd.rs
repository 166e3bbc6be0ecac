//! A small SPI LCD (ST7789 or ILI9341, 320x240 and the like) wired to the
//! board's SPI bus and two GPIO lines (data/command and reset), driven by
//! `mipidsi` over `linux-embedded-hal` (spidev, GPIO character device).
//! Built with the `spi-lcd` feature; it needs the panel to run.

use crate::panel::Panel;
use crate::{Error, PngSnapshot};
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::OriginDimensions;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};
use mipidsi::interface::SpiInterface;
use mipidsi::models::{ILI9341Rgb565, ST7789};
use mipidsi::options::{ColorInversion, Orientation, Rotation};
use mipidsi::{Builder, Display};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    St7789,
    Ili9341,
}

/// A name that is not a [`Controller`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of st7789, ili9341")]
pub struct UnknownController(pub String);

impl std::str::FromStr for Controller {
    type Err = UnknownController;
    fn from_str(s: &str) -> Result<Self, UnknownController> {
        match s {
            "st7789" => Ok(Self::St7789),
            "ili9341" => Ok(Self::Ili9341),
            other => Err(UnknownController(other.to_string())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SpiLcdConfig {
    /// `/dev/spidev0.0`
    pub spi: PathBuf,
    pub speed_hz: u32,
    /// `/dev/gpiochip0`
    pub gpio_chip: PathBuf,
    pub dc_line: u32,
    pub reset_line: u32,
    /// Switched on at start when given.
    pub backlight_line: Option<u32>,
    pub controller: Controller,
    /// As the UI sees it, after rotation (e.g. 320x240 landscape).
    pub width: u16,
    pub height: u16,
    pub rotate_degrees: u16,
    pub invert_colours: bool,
}

type Interface = SpiInterface<'static, SpidevDevice, CdevPin>;

enum Driver {
    St7789(Display<Interface, ST7789, CdevPin>),
    Ili9341(Display<Interface, ILI9341Rgb565, CdevPin>),
}

pub struct SpiLcd {
    driver: Driver,
    config: SpiLcdConfig,
    _backlight: Option<CdevPin>,
}

impl SpiLcd {
    pub fn open(config: &SpiLcdConfig) -> Result<Self, Error> {
        let spi_error = |reason: String| Error::Display {
            path: config.spi.clone(),
            reason,
        };
        let mut spi = SpidevDevice::open(&config.spi).map_err(|e| spi_error(e.to_string()))?;
        spi.configure(
            &SpidevOptions::new()
                .bits_per_word(8)
                .max_speed_hz(config.speed_hz)
                .mode(SpiModeFlags::SPI_MODE_0)
                .build(),
        )
        .map_err(|e| spi_error(e.to_string()))?;
        let dc = output(&config.gpio_chip, config.dc_line, 0)?;
        let reset = output(&config.gpio_chip, config.reset_line, 1)?;
        let backlight = config
            .backlight_line
            .map(|line| output(&config.gpio_chip, line, 1))
            .transpose()?;
        // mipidsi batches pixels through this buffer for the life of the
        // display; the appliance opens one panel once, so it is leaked.
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
        let di = SpiInterface::new(spi, dc, buffer);
        let rotation = match config.rotate_degrees {
            0 => Rotation::Deg0,
            90 => Rotation::Deg90,
            180 => Rotation::Deg180,
            270 => Rotation::Deg270,
            other => {
                return Err(spi_error(format!(
                    "rotation {other} is not 0, 90, 180 or 270"
                )))
            }
        };
        let orientation = Orientation::new().rotate(rotation);
        let inversion = if config.invert_colours {
            ColorInversion::Inverted
        } else {
            ColorInversion::Normal
        };
        // The controller's own size is before rotation.
        let (w, h) = if rotation.is_vertical() {
            (config.width, config.height)
        } else {
            (config.height, config.width)
        };
        let mut delay = Delay;
        let init_error = |e: &dyn std::fmt::Debug| spi_error(format!("panel init failed: {e:?}"));
        let driver = match config.controller {
            Controller::St7789 => Driver::St7789(
                Builder::new(ST7789, di)
                    .display_size(w, h)
                    .orientation(orientation)
                    .invert_colors(inversion)
                    .reset_pin(reset)
                    .init(&mut delay)
                    .map_err(|e| init_error(&e))?,
            ),
            Controller::Ili9341 => Driver::Ili9341(
                Builder::new(ILI9341Rgb565, di)
                    .display_size(w, h)
                    .orientation(orientation)
                    .invert_colors(inversion)
                    .reset_pin(reset)
                    .init(&mut delay)
                    .map_err(|e| init_error(&e))?,
            ),
        };
        Ok(Self {
            driver,
            config: config.clone(),
            _backlight: backlight,
        })
    }
}

fn output(chip: &Path, line: u32, initial: u8) -> Result<CdevPin, Error> {
    let gpio_error = |reason: String| Error::Gpio {
        chip: chip.to_path_buf(),
        line,
        reason,
    };
    let handle = Chip::new(chip)
        .and_then(|mut c| c.get_line(line))
        .and_then(|l| l.request(LineRequestFlags::OUTPUT, initial, "neuroscreen-lcd"))
        .map_err(|e| gpio_error(e.to_string()))?;
    CdevPin::new(handle).map_err(|e| gpio_error(e.to_string()))
}

impl Panel for SpiLcd {
    fn size(&self) -> (u32, u32) {
        (u32::from(self.config.width), u32::from(self.config.height))
    }

    fn show(&mut self, frame: &PngSnapshot) -> Result<(), Error> {
        let (pw, ph) = self.size();
        let size = frame.size();
        let (w, h) = (size.width.min(pw), size.height.min(ph));
        if w == 0 || h == 0 {
            return Ok(());
        }
        let pixels = frame.pixels();
        let colours = (0..h).flat_map(move |y| {
            (0..w).map(move |x| Rgb565::from(pixels[(y * size.width + x) as usize]))
        });
        let (ex, ey) = ((w - 1) as u16, (h - 1) as u16);
        let written = match &mut self.driver {
            Driver::St7789(d) => d.set_pixels(0, 0, ex, ey, colours),
            Driver::Ili9341(d) => d.set_pixels(0, 0, ex, ey, colours),
        };
        written.map_err(|e| Error::Display {
            path: self.config.spi.clone(),
            reason: format!("SPI write failed: {e:?}"),
        })
    }

    fn describe(&self) -> String {
        format!(
            "SPI LCD {:?} {}x{} on {}",
            self.config.controller,
            self.config.width,
            self.config.height,
            self.config.spi.display()
        )
    }
}
