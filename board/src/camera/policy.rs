//! Which frames become slices. A camera gives 30 frames a second of the same
//! picture; the models should see each new slice once, not thirty times.

use image::{imageops::FilterType, DynamicImage, GrayImage};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// Every Nth frame (1 takes all).
    EveryNth(u32),
    /// A frame whose picture differs from the last one taken by more than
    /// `threshold` (mean absolute difference of a 64x64 grey thumbnail,
    /// 0..255) and has settled (no such change since the frame before), so
    /// a console half-way through redrawing is not taken. Only every
    /// `look_every`th frame is decoded and compared.
    OnChange { threshold: f32, look_every: u32 },
    /// The next frame after each press of the button.
    Button,
}

/// What to do with the frame in hand before decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Take,
    Skip,
    /// Decode it and ask [`Selector::looked_at`].
    Look,
}

pub struct Selector {
    policy: Policy,
    frames: u64,
    button_was_down: bool,
    taken: Option<GrayImage>,
    previous: Option<GrayImage>,
}

const THUMB: u32 = 64;

impl Selector {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            frames: 0,
            button_was_down: false,
            taken: None,
            previous: None,
        }
    }

    /// Called once per captured frame with the button's state (`false`
    /// where there is none).
    pub fn next_frame(&mut self, button_down: bool) -> Decision {
        let n = self.frames;
        self.frames += 1;
        let pressed = button_down && !self.button_was_down;
        self.button_was_down = button_down;
        match self.policy {
            Policy::EveryNth(every) => take_if(n.is_multiple_of(u64::from(every.max(1)))),
            Policy::Button => take_if(pressed),
            Policy::OnChange { look_every, .. } => {
                if n.is_multiple_of(u64::from(look_every.max(1))) {
                    Decision::Look
                } else {
                    Decision::Skip
                }
            }
        }
    }

    /// For [`Decision::Look`]: whether this decoded frame is taken.
    pub fn looked_at(&mut self, frame: &DynamicImage) -> bool {
        let Policy::OnChange { threshold, .. } = self.policy else {
            return true;
        };
        let thumb = image::imageops::resize(&frame.to_luma8(), THUMB, THUMB, FilterType::Triangle);
        let changed = self
            .taken
            .as_ref()
            .is_none_or(|t| mean_abs_diff(t, &thumb) > threshold);
        let settled = self
            .previous
            .as_ref()
            .is_some_and(|p| mean_abs_diff(p, &thumb) <= threshold);
        self.previous = Some(thumb.clone());
        let take = changed && settled;
        if take {
            self.taken = Some(thumb);
        }
        take
    }
}

fn take_if(yes: bool) -> Decision {
    if yes {
        Decision::Take
    } else {
        Decision::Skip
    }
}

/// Mean absolute difference of two same-sized grey pictures, 0..255.
pub fn mean_abs_diff(a: &GrayImage, b: &GrayImage) -> f32 {
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f32 / a.as_raw().len().max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    fn flat(v: u8) -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_pixel(32, 32, Luma([v])))
    }

    #[test]
    fn every_nth_takes_frames_0_n_2n() {
        let mut s = Selector::new(Policy::EveryNth(3));
        let taken: Vec<bool> = (0..7)
            .map(|_| s.next_frame(false) == Decision::Take)
            .collect();
        assert_eq!(taken, [true, false, false, true, false, false, true]);
    }

    #[test]
    fn the_button_takes_one_frame_per_press_not_per_frame_held() {
        let mut s = Selector::new(Policy::Button);
        let states = [false, true, true, true, false, true, false];
        let taken: Vec<bool> = states
            .iter()
            .map(|&b| s.next_frame(b) == Decision::Take)
            .collect();
        assert_eq!(taken, [false, true, false, false, false, true, false]);
    }

    /// A new picture is taken once it holds still for a frame; noise below
    /// the threshold and the same picture again are not.
    #[test]
    fn on_change_takes_each_settled_new_picture_once() {
        let mut s = Selector::new(Policy::OnChange {
            threshold: 8.0,
            look_every: 1,
        });
        let frames = [10, 10, 12, 10, 200, 200, 201, 200, 90, 10, 10];
        let taken: Vec<bool> = frames
            .iter()
            .map(|&v| {
                assert_eq!(s.next_frame(false), Decision::Look);
                s.looked_at(&flat(v))
            })
            .collect();
        // 10: nothing before it to have settled on; second 10: settled, new.
        // 12 and 10: noise. 200 then 200: taken on the second; 201: noise.
        // 90 in passing: never settles. 10 twice: new against 200, taken.
        assert_eq!(
            taken,
            [false, true, false, false, false, true, false, false, false, false, true]
        );
    }

    #[test]
    fn on_change_only_looks_at_every_nth_frame() {
        let mut s = Selector::new(Policy::OnChange {
            threshold: 8.0,
            look_every: 4,
        });
        let looks: Vec<bool> = (0..8)
            .map(|_| s.next_frame(false) == Decision::Look)
            .collect();
        assert_eq!(
            looks,
            [true, false, false, false, true, false, false, false]
        );
    }
}
