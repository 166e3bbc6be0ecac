//! The watched inbox: which file-system events mean "a slice has arrived".
//!
//! A slice counts once its writer has closed it (inotify's CLOSE_WRITE) or
//! once it was renamed in (a scanner writing `.x.tmp` then renaming it, or a
//! `mv` from elsewhere). A file still being written is never read half-way.

use crate::inputs;
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind};
use std::path::{Path, PathBuf};

/// The slice files `event` delivers, in event order. A folder renamed in
/// (a whole series moved into the inbox) gives the slices inside it.
pub fn arrived(event: &Event) -> Vec<PathBuf> {
    let candidates: Vec<PathBuf> = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => event.paths.clone(),
        // inotify reports every move into the inbox as `To`; a move within
        // the watched tree comes a second time as `Both` (from and to), which
        // is left out so the slice is queued once (the soak found it queued
        // twice: read and hashed twice, and an error line if it was gone by
        // the second time).
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => event.paths.clone(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for p in candidates {
        if hidden(&p) {
            continue;
        }
        if p.is_dir() && !inputs::named_like_a_slice(&p) {
            out.extend(inputs::expand(std::slice::from_ref(&p)).unwrap_or_default());
        } else if inputs::is_slice_file(&p) {
            out.push(p);
        }
    }
    out
}

/// Writers' temporaries are dot files by convention (ours too).
fn hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, paths: &[&Path]) -> Event {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(p.to_path_buf());
        }
        e
    }

    #[test]
    fn closed_after_writing_and_renamed_in_count_nothing_else_does() {
        let d = tempfile::tempdir().unwrap();
        let slice = d.path().join("s1.png");
        std::fs::write(&slice, b"x").unwrap();
        let closed = event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &[&slice],
        );
        assert_eq!(arrived(&closed), std::slice::from_ref(&slice));
        let renamed = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            &[&slice],
        );
        assert_eq!(arrived(&renamed), std::slice::from_ref(&slice));
        let pair = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &[&d.path().join(".s1.png.tmp"), &slice],
        );
        assert!(arrived(&pair).is_empty(), "the same rename as `To` again");
        for kind in [
            EventKind::Create(notify::event::CreateKind::File),
            EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ] {
            assert!(arrived(&event(kind, &[&slice])).is_empty(), "{kind:?}");
        }
    }

    #[test]
    fn temporaries_masks_and_other_files_are_ignored() {
        let d = tempfile::tempdir().unwrap();
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        for name in [".s1.png", "s1.png.tmp", "s1_mask.png", "notes.txt"] {
            let p = d.path().join(name);
            assert!(arrived(&event(closed, &[&p])).is_empty(), "{name}");
        }
    }

    #[test]
    fn a_folder_renamed_in_gives_its_slices() {
        let d = tempfile::tempdir().unwrap();
        let series = d.path().join("series7");
        std::fs::create_dir(&series).unwrap();
        for n in ["b.png", "a.png", "a_mask.png"] {
            std::fs::write(series.join(n), b"x").unwrap();
        }
        let moved = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            &[&series],
        );
        assert_eq!(
            arrived(&moved),
            [series.join("a.png"), series.join("b.png")]
        );
    }
}
