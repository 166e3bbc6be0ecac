//! Connected parts of a mask (8-connected), for the rules that clear parts
//! of a segmenter's mask: the same on the appliance and in the trainer's
//! evaluation, so a rule chosen on validation patients is the rule shipped.

/// Each 8-connected component of `mask` (`width` x `height`, row-major) as
/// the indices of its pixels, in the order their first pixel appears.
pub fn components(mask: &[bool], width: usize, height: usize) -> Vec<Vec<usize>> {
    assert_eq!(
        mask.len(),
        width * height,
        "mask size does not match dimensions"
    );
    let mut seen = vec![false; mask.len()];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        let mut component = Vec::new();
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            component.push(i);
            let (x, y) = (i % width, i / width);
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let j = ny * width + nx;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        out.push(component);
    }
    out
}

/// Clears every component smaller than `min_px` pixels.
pub fn clear_smaller_than(mask: &mut [bool], width: usize, height: usize, min_px: usize) {
    if min_px <= 1 {
        return;
    }
    for c in components(mask, width, height) {
        if c.len() < min_px {
            c.iter().for_each(|&i| mask[i] = false);
        }
    }
}

/// Clears every component under `share` of the largest one's pixels: a
/// speck beside a lesion is more often a false mark (bright fluid, a vessel)
/// than a second lesion of that size. 0 keeps all; 1 keeps the largest
/// (and any of the same size).
pub fn clear_under_share(mask: &mut [bool], width: usize, height: usize, share: f32) {
    if share <= 0.0 {
        return;
    }
    let parts = components(mask, width, height);
    let largest = parts.iter().map(Vec::len).max().unwrap_or(0);
    for c in parts {
        if (c.len() as f32) < share * largest as f32 {
            c.iter().for_each(|&i| mask[i] = false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let w = rows[0].len();
        let mask = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        (mask, w, rows.len())
    }

    #[test]
    fn diagonal_neighbours_join_and_parts_are_in_first_pixel_order() {
        let (m, w, h) = grid(&["#...##", ".#..##", "..#...", "......"]);
        let parts = components(&m, w, h);
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(parts[0][0], 0);
        assert!(components(&[false; 6], 3, 2).is_empty());
    }

    #[test]
    fn small_parts_go_by_size_and_by_share_of_the_largest() {
        let (m, w, h) = grid(&["####..#", "####...", "......#", "##....#"]);
        // Parts: 8, 1, 2, 2.
        let mut a = m.clone();
        clear_smaller_than(&mut a, w, h, 2);
        assert_eq!(a.iter().filter(|&&b| b).count(), 12);
        let mut b = m.clone();
        clear_under_share(&mut b, w, h, 0.25);
        assert_eq!(b.iter().filter(|&&b| b).count(), 12);
        let mut c = m.clone();
        clear_under_share(&mut c, w, h, 0.5);
        assert_eq!(c.iter().filter(|&&b| b).count(), 8);
        assert!(c[..4].iter().all(|&b| b));
        let mut d = m.clone();
        clear_under_share(&mut d, w, h, 0.0);
        assert_eq!(d, m);
        clear_smaller_than(&mut d, w, h, 1);
        assert_eq!(d, m);
    }
}
