//! A push button on a GPIO line (character device): the radiographer
//! presses it when the slice to screen is on the console. Built with the
//! `gpio-button` feature.

use crate::Error;
use embedded_hal::digital::InputPin;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;
use std::path::{Path, PathBuf};

pub struct Button {
    pin: CdevPin,
    active_low: bool,
    /// Where the line is, for errors.
    chip: PathBuf,
    line: u32,
}

impl Button {
    /// `active_low`: the usual wiring, a button to ground with a pull-up.
    pub fn open(chip: &Path, line: u32, active_low: bool) -> Result<Self, Error> {
        let gpio_error = |reason: String| Error::Gpio {
            chip: chip.to_path_buf(),
            line,
            reason,
        };
        let handle = Chip::new(chip)
            .and_then(|mut c| c.get_line(line))
            .and_then(|l| l.request(LineRequestFlags::INPUT, 0, "neuroscreen-button"))
            .map_err(|e| gpio_error(e.to_string()))?;
        let pin = CdevPin::new(handle).map_err(|e| gpio_error(e.to_string()))?;
        Ok(Self {
            pin,
            active_low,
            chip: chip.to_path_buf(),
            line,
        })
    }

    /// Whether the button is held now; an error names the chip and line.
    pub fn is_down(&mut self) -> Result<bool, Error> {
        self.pin
            .is_high()
            .map(|high| high != self.active_low)
            .map_err(|e| Error::Gpio {
                chip: self.chip.clone(),
                line: self.line,
                reason: e.to_string(),
            })
    }
}
