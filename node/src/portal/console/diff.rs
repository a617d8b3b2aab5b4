//! A readable line diff of two texts for the bank's review of a mini-app file: common lines around the change are kept, the changed middle is aligned by longest common subsequence when it is small enough and shown as removed-then-added when it is not, so the work is bounded whatever the files hold.

/// The most cells (old lines times new lines) the aligned diff may cost.
const MAX_CELLS: usize = 1_000_000;

/// One line of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line<'a> {
    /// In both texts.
    Same(&'a str),
    /// Only in the old text.
    Removed(&'a str),
    /// Only in the new text.
    Added(&'a str),
}

/// The lines of `new` against those of `old`.
pub(super) fn line_diff<'a>(old: &'a str, new: &'a str) -> Vec<Line<'a>> {
    let (old, new): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old_mid, new_mid) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );
    let mut lines: Vec<Line> = old[..prefix].iter().map(|l| Line::Same(l)).collect();
    if old_mid.len().saturating_mul(new_mid.len()) <= MAX_CELLS {
        lines.extend(aligned(old_mid, new_mid));
    } else {
        lines.extend(old_mid.iter().map(|l| Line::Removed(l)));
        lines.extend(new_mid.iter().map(|l| Line::Added(l)));
    }
    lines.extend(old[old.len() - suffix..].iter().map(|l| Line::Same(l)));
    lines
}

/// The longest-common-subsequence alignment of two short runs of lines.
fn aligned<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Line<'a>> {
    let width = new.len() + 1;
    // common[i * width + j]: the LCS length of old[i..] and new[j..].
    let mut common = vec![0u32; (old.len() + 1) * width];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i * width + j] = if old[i] == new[j] {
                common[(i + 1) * width + j + 1] + 1
            } else {
                common[(i + 1) * width + j].max(common[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j, mut lines) = (0, 0, Vec::with_capacity(old.len() + new.len()));
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            lines.push(Line::Same(old[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < old.len()
            && (j == new.len() || common[(i + 1) * width + j] >= common[i * width + j + 1])
        {
            // Removals first where either way keeps as many common lines.
            lines.push(Line::Removed(old[i]));
            i += 1;
        } else {
            lines.push(Line::Added(new[j]));
            j += 1;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::Line::{Added, Removed, Same};
    use super::*;

    #[test]
    fn a_changed_line_shows_as_removed_and_added_between_the_lines_kept() {
        let old = "a\nb\nc\nd\n";
        let new = "a\nB\nc\nd\ne\n";
        assert_eq!(
            line_diff(old, new),
            [
                Same("a"),
                Removed("b"),
                Added("B"),
                Same("c"),
                Same("d"),
                Added("e")
            ]
        );
    }

    #[test]
    fn the_middle_is_aligned_on_its_common_lines() {
        let diff = line_diff("x\n1\n2\n3\ny", "x\n0\n1\n3\ny");
        assert_eq!(
            diff,
            [
                Same("x"),
                Added("0"),
                Same("1"),
                Removed("2"),
                Same("3"),
                Same("y")
            ]
        );
    }

    #[test]
    fn identical_and_empty_texts() {
        assert_eq!(line_diff("a\nb", "a\nb"), [Same("a"), Same("b")]);
        assert_eq!(line_diff("", "a"), [Added("a")]);
        assert_eq!(line_diff("a", ""), [Removed("a")]);
    }

    #[test]
    fn a_middle_too_large_to_align_is_shown_whole_removed_then_added() {
        let old: String = (0..1500).map(|i| format!("old {i}\n")).collect();
        let new: String = (0..1500).map(|i| format!("new {i}\n")).collect();
        let diff = line_diff(&old, &new);
        assert_eq!(diff.len(), 3000);
        assert!(diff[..1500].iter().all(|l| matches!(l, Removed(_))));
        assert!(diff[1500..].iter().all(|l| matches!(l, Added(_))));
    }
}
