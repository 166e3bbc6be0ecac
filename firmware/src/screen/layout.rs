//! Where things go, from the display's size alone: a 320x240 SPI LCD, an
//! 800x480 HDMI/DSI panel and a 1024x600 panel each get a layout sized for
//! reading from a step away; other sizes take the nearest smaller one.

use embedded_graphics::mono_font::iso_8859_1::{FONT_10X20, FONT_6X10, FONT_7X13};
use embedded_graphics::mono_font::MonoFont;
use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::Rectangle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    /// Up to 640x400: the 320x240 SPI LCD class.
    Compact,
    /// 800x480 class.
    Panel,
    /// 1024x600 and larger.
    Large,
}

#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub kind: LayoutKind,
    pub size: Size,
    /// The square the slice is drawn in.
    pub picture: Rectangle,
    /// The column right of the picture: verdict and figures.
    pub column: Rectangle,
    /// The strip along the bottom: models, source, last error.
    pub status: Rectangle,
    /// The verdict's letters are `verdict_font` scaled by this much.
    pub verdict_scale: u32,
    pub verdict_font: &'static MonoFont<'static>,
    pub figure_font: &'static MonoFont<'static>,
    pub status_font: &'static MonoFont<'static>,
    /// Mask outline width in screen pixels.
    pub outline: u32,
    pub margin: u32,
}

impl Layout {
    pub fn for_size(width: u32, height: u32) -> Self {
        let kind = if width >= 1000 && height >= 580 {
            LayoutKind::Large
        } else if width >= 640 && height >= 400 {
            LayoutKind::Panel
        } else {
            LayoutKind::Compact
        };
        let (margin, status_font, figure_font, verdict_scale, outline) = match kind {
            LayoutKind::Compact => (4, &FONT_6X10, &FONT_7X13, 2, 1),
            LayoutKind::Panel => (10, &FONT_7X13, &FONT_10X20, 3, 2),
            LayoutKind::Large => (12, &FONT_7X13, &FONT_10X20, 4, 2),
        };
        // Three status lines and a rule above them.
        let status_h = 3 * (status_font.character_size.height + 2) + 6;
        let usable_h = height.saturating_sub(status_h + 2 * margin);
        // The picture is square and leaves the column at least 40 % of the
        // width (Compact) so the verdict never crowds it.
        let side = match kind {
            LayoutKind::Compact => usable_h.min(width / 2),
            _ => usable_h.min(width * 3 / 5),
        };
        let picture = Rectangle::new(
            Point::new(margin as i32, margin as i32),
            Size::new(side, side),
        );
        let column_x = side + 2 * margin;
        let column = Rectangle::new(
            Point::new(column_x as i32, margin as i32),
            Size::new(width.saturating_sub(column_x + margin), usable_h),
        );
        let status = Rectangle::new(
            Point::new(0, height.saturating_sub(status_h) as i32),
            Size::new(width, status_h),
        );
        Self {
            kind,
            size: Size::new(width, height),
            picture,
            column,
            status,
            verdict_scale,
            verdict_font: &FONT_10X20,
            figure_font,
            status_font,
            outline,
            margin,
        }
    }

    /// Characters of `font` (scaled) that fit in `width` pixels.
    pub fn chars_in(width: u32, font: &MonoFont<'_>, scale: u32) -> usize {
        let w = font.character_size.width + font.character_spacing;
        (width / (w * scale.max(1)).max(1)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_panel_sizes_get_their_layouts_and_everything_fits() {
        for (w, h, kind) in [
            (320, 240, LayoutKind::Compact),
            (480, 320, LayoutKind::Compact),
            (800, 480, LayoutKind::Panel),
            (1024, 600, LayoutKind::Large),
            (1920, 1080, LayoutKind::Large),
        ] {
            let l = Layout::for_size(w, h);
            assert_eq!(l.kind, kind, "{w}x{h}");
            let screen = Rectangle::new(Point::zero(), Size::new(w, h));
            for r in [l.picture, l.column, l.status] {
                let br = r.bottom_right().unwrap();
                assert!(
                    screen.contains(r.top_left) && screen.contains(br),
                    "{w}x{h} {r:?}"
                );
            }
            // The verdict's longest word fits its column.
            let need = 6 * 10 * l.verdict_scale;
            assert!(l.column.size.width >= need, "{w}x{h}: {:?}", l.column);
            assert!(l.picture.size.width >= 150, "{w}x{h}");
            // Picture and column do not overlap the status strip.
            assert!(l.picture.bottom_right().unwrap().y < l.status.top_left.y);
        }
    }
}
