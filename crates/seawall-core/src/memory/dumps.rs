//! Which evidence files to remove before writing a new one, so the dump directory stays within
//! its caps: at most `max_dump_files` files and `max_dump_bytes` bytes, oldest removed first.
//! A full disk must not be the next incident.

use super::config::WatchdogConfig;

/// Evidence files the watchdog writes start with this, and rotation only ever touches files
/// that do: the directory may hold other things.
pub const DUMP_PREFIX: &str = "seawall-memory-";

/// An evidence file already in the dump directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpFile {
    /// File name (not a path).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// When it was written, in any unit that orders files (milliseconds since the epoch).
    pub created: u64,
}

/// What to do before writing a new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPlan {
    /// Files to delete first, oldest first.
    pub delete: Vec<String>,
    /// Whether the new file fits the byte cap at all (after deleting every older file). When it
    /// does not, write a smaller kind of evidence (a profile) instead.
    pub fits: bool,
}

/// Plans room for a new file of about `incoming_bytes`. Files not named with [`DUMP_PREFIX`]
/// are neither counted nor deleted.
pub fn plan_dump_rotation(
    config: &WatchdogConfig,
    existing: &[DumpFile],
    incoming_bytes: u64,
) -> DumpPlan {
    let mut ours: Vec<&DumpFile> = existing
        .iter()
        .filter(|f| f.name.starts_with(DUMP_PREFIX))
        .collect();
    // Oldest first; the name breaks ties so every language deletes the same files.
    ours.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
    let fits = incoming_bytes <= config.max_dump_bytes;
    if !fits {
        // Nothing to make room for: the caller writes something smaller and plans again.
        return DumpPlan {
            delete: Vec::new(),
            fits,
        };
    }
    let mut files = ours.len() as u64;
    let mut bytes: u64 = ours.iter().map(|f| f.bytes).fold(0, u64::saturating_add);
    let max_files = u64::from(config.max_dump_files);
    let mut delete = Vec::new();
    for f in ours {
        let too_many = files + 1 > max_files;
        let too_big = bytes.saturating_add(incoming_bytes) > config.max_dump_bytes;
        if !too_many && !too_big {
            break;
        }
        delete.push(f.name.clone());
        files -= 1;
        bytes = bytes.saturating_sub(f.bytes);
    }
    DumpPlan { delete, fits }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: u64, created: u64) -> DumpFile {
        DumpFile {
            name: format!("{DUMP_PREFIX}{name}"),
            bytes,
            created,
        }
    }

    #[test]
    fn the_oldest_go_first_and_foreign_files_stay() {
        let config = WatchdogConfig::builder()
            .max_dump_files(2)
            .build()
            .expect("valid");
        let existing = vec![
            file("b", 10, 2),
            file("a", 10, 1),
            DumpFile {
                name: "notes.txt".into(),
                bytes: 1,
                created: 0,
            },
        ];
        let plan = plan_dump_rotation(&config, &existing, 10);
        assert_eq!(plan.delete, vec![format!("{DUMP_PREFIX}a")]);
        assert!(plan.fits);
    }

    #[test]
    fn a_file_larger_than_the_cap_does_not_fit() {
        let config = WatchdogConfig::builder()
            .max_dump_bytes(1 << 20)
            .build()
            .expect("valid");
        let plan = plan_dump_rotation(&config, &[file("a", 10, 1)], 2 << 20);
        assert!(!plan.fits);
        assert!(
            plan.delete.is_empty(),
            "nothing is deleted for a file that is not written"
        );
    }
}
