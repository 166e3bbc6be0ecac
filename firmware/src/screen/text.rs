//! Text on the screen: mono fonts scaled up for the verdict (the largest
//! embedded-graphics font is 10x20, too small to read across a room), and
//! lines cut to the width they have.

use board::PngSnapshot;
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Baseline, Text};

/// Draws each pixel of whatever is drawn on it as a `scale` x `scale` block
/// at `origin` on the screen below.
struct Scaled<'a> {
    screen: &'a mut PngSnapshot,
    scale: u32,
    origin: Point,
}

impl OriginDimensions for Scaled<'_> {
    fn size(&self) -> Size {
        let s = self.screen.size();
        Size::new(s.width / self.scale, s.height / self.scale)
    }
}

impl DrawTarget for Scaled<'_> {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let s = self.scale as i32;
        for Pixel(p, c) in pixels {
            let at = self.origin + Point::new(p.x * s, p.y * s);
            self.screen
                .fill_solid(&Rectangle::new(at, Size::new(self.scale, self.scale)), c)?;
        }
        Ok(())
    }
}

/// Draws `text` with its top-left corner at `at`; returns the height used.
pub fn draw(
    screen: &mut PngSnapshot,
    text: &str,
    at: Point,
    font: &MonoFont<'_>,
    scale: u32,
    colour: Rgb888,
) -> i32 {
    let style = MonoTextStyle::new(font, colour);
    if scale <= 1 {
        let _ = Text::with_baseline(text, at, style, Baseline::Top).draw(screen);
        return font.character_size.height as i32;
    }
    let mut scaled = Scaled {
        screen,
        scale,
        origin: at,
    };
    let _ = Text::with_baseline(text, Point::zero(), style, Baseline::Top).draw(&mut scaled);
    (font.character_size.height * scale) as i32
}

/// `text` cut to `max` characters, ending in ".." when cut.
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(2);
    text.chars()
        .take(keep)
        .chain("..".chars())
        .take(max)
        .collect()
}

/// `text` broken into lines of at most `width` characters, at spaces where
/// it can, at most `lines` of them.
pub fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let len = line.chars().count();
            let space = usize::from(len > 0);
            if len + space + word.chars().count() <= width {
                if space == 1 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if len > 0 {
                out.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line: cut it.
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            out.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() {
        out.push(line);
    }
    if out.len() > lines {
        out.truncate(lines);
        if let Some(last) = out.last_mut() {
            *last = fit(&format!("{last} ..."), width);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_wrapped_to_their_width() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdefg", 6), "abcd..");
        assert_eq!(
            wrap("cannot decode /in/x.png: bad header", 14, 5),
            ["cannot decode", "/in/x.png: bad", "header"]
        );
        assert_eq!(wrap("abcdefghij", 4, 5), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a b c d e f", 3, 2), ["a b", "c.."]);
    }

    #[test]
    fn scaled_text_is_drawn_in_blocks() {
        let mut s = PngSnapshot::new(64, 48);
        let h = draw(
            &mut s,
            "I",
            Point::new(2, 2),
            &embedded_graphics::mono_font::iso_8859_1::FONT_6X10,
            3,
            Rgb888::WHITE,
        );
        assert_eq!(h, 30);
        let lit: Vec<(u32, u32)> = (0..48)
            .flat_map(|y| (0..64).map(move |x| (x, y)))
            .filter(|&(x, y)| s.pixel(x, y) == Some(Rgb888::WHITE))
            .collect();
        // Every lit pixel belongs to a whole 3x3 block aligned to the origin.
        assert!(!lit.is_empty());
        assert!(lit.iter().all(|&(x, y)| (x - 2) % 3 < 3 && (y - 2) % 3 < 3));
        assert_eq!(lit.len() % 9, 0);
    }
}
