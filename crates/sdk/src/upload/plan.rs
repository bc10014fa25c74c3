//! How an object is cut into parts: single PutObject below the threshold, fixed-size parts for a known
//! size (raised so any size up to OSS's 48.8 TiB fits in 10,000 parts), and for a stream of unknown
//! length a part size that doubles every 1,000 parts so it never runs out of part numbers. Also the
//! default parallelism, sized for the machine and the file.

use vodup_proto::oss::part::{MAX_OBJECT_SIZE, MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE};

use crate::error::{Error, Result};

/// Default part size: 8 MiB (with 4-8 in flight that is 32-64 MiB of buffers).
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// Parts per size step of a stream of unknown length.
pub const PARTS_PER_STEP: u32 = 1000;

/// How the object's bytes are laid out in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One PutObject.
    Single {
        /// The size.
        size: u64,
    },
    /// Parts of `part_size` (the last one shorter).
    Fixed {
        /// The size of every part but the last.
        part_size: u64,
        /// The total size.
        size: u64,
    },
    /// Unknown total size: part `n` is `base << ((n-1) / 1000)`, capped at 5 GiB.
    Growing {
        /// The first parts' size.
        base: u64,
    },
}

impl Layout {
    /// Picks the layout for a source of `size` (None = unknown), with the caller's part size and
    /// threshold if given. Refuses what OSS cannot store.
    pub fn plan(
        size: Option<u64>,
        part_size: Option<u64>,
        threshold: Option<u64>,
    ) -> Result<(Self, Option<String>)> {
        let requested = part_size.unwrap_or(DEFAULT_PART_SIZE);
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&requested) {
            return Err(Error::invalid_input(format!("part size {requested} is outside OSS's limits"))
                .with_hint("give --part-size between 100K and 5G"));
        }
        let Some(size) = size else {
            return Ok((Self::Growing { base: requested }, None));
        };
        if size > MAX_OBJECT_SIZE {
            return Err(Error::invalid_input(format!(
                "the source is {size} bytes; OSS objects hold at most {MAX_OBJECT_SIZE} (48.8 TiB)"
            ))
            .with_hint("split the source"));
        }
        if size <= threshold.unwrap_or(requested) && size <= MAX_PART_SIZE {
            return Ok((Self::Single { size }, None));
        }
        // Keep the caller's part size unless the object would need more than 10,000 parts; then take the
        // smallest whole number of MiB that fits (alibabacloud-oss-v2 grows its part size the same way).
        if size.div_ceil(requested) > u64::from(MAX_PART_NUMBER) {
            let needed = size.div_ceil(u64::from(MAX_PART_NUMBER)).div_ceil(1 << 20) << 20;
            let notice = format!(
                "part size raised from {requested} to {needed} bytes so the file fits in 10,000 parts"
            );
            return Ok((Self::Fixed { part_size: needed.min(MAX_PART_SIZE), size }, Some(notice)));
        }
        Ok((Self::Fixed { part_size: requested, size }, None))
    }

    /// Size of part `number` (1-based), or None past the end of a known size.
    pub fn part_len(&self, number: u32) -> Option<u64> {
        match *self {
            Self::Single { size } => (number == 1).then_some(size),
            Self::Fixed { part_size, size } => {
                let start = u64::from(number - 1) * part_size;
                (start < size).then(|| part_size.min(size - start))
            }
            Self::Growing { base } => {
                let step = (number - 1) / PARTS_PER_STEP;
                Some(base.checked_shl(step).unwrap_or(MAX_PART_SIZE).min(MAX_PART_SIZE))
            }
        }
    }

    /// Byte offset of part `number` for a fixed layout.
    pub fn part_offset(&self, number: u32) -> u64 {
        match *self {
            Self::Single { .. } => 0,
            Self::Fixed { part_size, .. } => u64::from(number - 1) * part_size,
            Self::Growing { base } => {
                (1..number).map(|n| Self::Growing { base }.part_len(n).unwrap_or(0)).sum()
            }
        }
    }

    /// Number of parts, when known.
    pub fn parts(&self) -> Option<u32> {
        match *self {
            Self::Single { .. } => Some(1),
            Self::Fixed { part_size, size } => u32::try_from(size.div_ceil(part_size)).ok(),
            Self::Growing { .. } => None,
        }
    }

    /// The first part's size.
    pub fn first_part_size(&self) -> u64 {
        self.part_len(1).unwrap_or(0)
    }
}

/// Parts in flight when the caller does not say: twice the cores, between 2 and 8, never more than parts.
pub fn default_parallel(parts: Option<u32>) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let parallel = (cores * 2).clamp(2, 8);
    parts.map_or(parallel, |p| parallel.min(p.max(1) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_single_and_large_ones_fit_in_ten_thousand_parts() {
        assert_eq!(Layout::plan(Some(1000), None, None).unwrap().0, Layout::Single { size: 1000 });
        let (layout, notice) = Layout::plan(Some(1 << 30), None, None).unwrap();
        assert_eq!(layout, Layout::Fixed { part_size: 8 << 20, size: 1 << 30 });
        assert!(notice.is_none());
        assert_eq!(layout.parts(), Some(128));
        let max = MAX_OBJECT_SIZE;
        let (layout, notice) = Layout::plan(Some(max), Some(1 << 20), None).unwrap();
        assert!(layout.parts().unwrap() <= MAX_PART_NUMBER, "{layout:?}");
        assert!(notice.is_some());
        assert!(Layout::plan(Some(max + 1), None, None).is_err());
        assert!(Layout::plan(Some(1), Some(1000), None).is_err());
        // A small part size is kept when the parts fit (compat/test_wire_shape.py sends 100K parts).
        let (layout, notice) = Layout::plan(Some(358_400), Some(102_400), None).unwrap();
        assert_eq!((layout.parts(), notice), (Some(4), None));
    }

    #[test]
    fn last_part_is_short_and_offsets_add_up() {
        let layout = Layout::Fixed { part_size: 100, size: 250 };
        assert_eq!(layout.part_len(3), Some(50));
        assert_eq!(layout.part_len(4), None);
        assert_eq!(layout.part_offset(3), 200);
    }

    #[test]
    fn growing_parts_reach_terabytes_within_ten_thousand_parts() {
        let layout = Layout::Growing { base: 8 << 20 };
        assert_eq!(layout.part_len(1000), Some(8 << 20));
        assert_eq!(layout.part_len(1001), Some(16 << 20));
        let total: u64 = (1..=MAX_PART_NUMBER).map(|n| layout.part_len(n).unwrap()).sum();
        assert!(total > 7 << 40, "{total}");
        assert_eq!(layout.part_offset(1002), 1000 * (8 << 20) + (16 << 20));
    }
}
