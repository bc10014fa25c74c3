//! Turns the SOURCE arguments, folders and `--from-list` into the files of a batch: folders are walked
//! (`--recursive` for subfolders) and keep the files whose extension fits the media type and that pass
//! `--include`/`--exclude` (globs matched against the path below the folder, so `*.mp4` and `raw/**`
//! both work). For videos, an `.m3u8` found in a folder is uploaded as a playlist with its segments, and
//! the files it references are not uploaded again as videos of their own.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use vodup_proto::vod::media::{IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, attached_extensions, extension_of};
use vodup_sdk::batch::{BatchItem, BatchMedia};
use vodup_sdk::source::Source;
use vodup_sdk::source::m3u8::{Location, plan};
use vodup_sdk::{Error, ErrorKind};

use super::list::{self, ListEntry};
use crate::args::BatchArgs;

/// The files of a batch, in a stable order, each once.
pub fn expand(sources: &[String], args: &BatchArgs, media: &BatchMedia) -> Result<Vec<BatchItem>, Error> {
    let filters = Filters::new(args)?;
    let mut entries: Vec<ListEntry> =
        sources.iter().map(|source| ListEntry { source: source.clone(), ..ListEntry::default() }).collect();
    if let Some(path) = &args.from_list {
        entries.extend(list::read(path)?);
    }
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    for entry in entries {
        if entry.source == "-" {
            return Err(Error::invalid_input("standard input cannot be part of a batch")
                .with_hint("upload a stream on its own: vodup upload video - --file-name NAME.EXT"));
        }
        let path = Path::new(&entry.source);
        let found = if path.is_dir() {
            walk(path, args.recursive, &filters, media)?
        } else {
            vec![(entry.source.clone(), is_playlist(&entry.source, media))]
        };
        for (source, playlist) in found {
            let item = item(&source, playlist, &entry, media)?;
            if seen.insert(item.file.clone()) {
                items.push(item);
            }
        }
    }
    if items.is_empty() {
        return Err(Error::invalid_input("the sources hold no file to upload").with_hint(
            "check the folder, --recursive, --include and --exclude (folders keep files with the media type's extensions)",
        ));
    }
    Ok(items)
}

/// `--include` and `--exclude`.
struct Filters {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Filters {
    fn new(args: &BatchArgs) -> Result<Self, Error> {
        let set = |globs: &[String]| -> Result<GlobSet, Error> {
            let mut builder = GlobSetBuilder::new();
            for glob in globs {
                builder.add(Glob::new(glob).map_err(|e| {
                    Error::invalid_input(format!("bad glob {glob:?}: {e}"))
                        .with_hint("see --include/--exclude examples in the README")
                })?);
            }
            builder.build().map_err(|e| Error::invalid_input(e.to_string()))
        };
        let include = if args.include.is_empty() { None } else { Some(set(&args.include)?) };
        Ok(Self { include, exclude: set(&args.exclude)? })
    }

    /// Whether `relative` (below the walked folder) is kept: by the whole path or the file name.
    fn keeps(&self, relative: &Path) -> bool {
        let name = relative.file_name().map(Path::new).unwrap_or(relative);
        let matches = |set: &GlobSet| set.is_match(relative) || set.is_match(name);
        self.include.as_ref().is_none_or(matches) && !matches(&self.exclude)
    }
}

fn extensions(media: &BatchMedia) -> &'static [&'static str] {
    match media {
        BatchMedia::Video(_) => VIDEO_EXTENSIONS,
        BatchMedia::M3u8(_) => &["m3u8"],
        BatchMedia::Image(_) => IMAGE_EXTENSIONS,
        BatchMedia::Attached(meta) => attached_extensions(&meta.business_type).unwrap_or(&[]),
    }
}

fn is_playlist(source: &str, media: &BatchMedia) -> bool {
    match media {
        BatchMedia::M3u8(_) => true,
        BatchMedia::Video(_) => extension_of(source).is_some_and(|ext| ext == "m3u8"),
        _ => false,
    }
}

/// The files to upload in `dir`: `(path, is a playlist)`, sorted.
fn walk(
    dir: &Path,
    recursive: bool,
    filters: &Filters,
    media: &BatchMedia,
) -> Result<Vec<(String, bool)>, Error> {
    let mut files: Vec<PathBuf> = Vec::new();
    let walker =
        walkdir::WalkDir::new(dir).follow_links(true).max_depth(if recursive { usize::MAX } else { 1 });
    for entry in walker.sort_by_file_name() {
        let entry = entry.map_err(|e| {
            Error::new(ErrorKind::Io, "list the folder", e.to_string())
                .with_path(dir)
                .with_hint("check its permissions")
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let wanted =
            path.to_str().and_then(extension_of).is_some_and(|ext| extensions(media).contains(&ext.as_str()));
        if wanted && filters.keeps(path.strip_prefix(dir).unwrap_or(path)) {
            files.push(path.to_owned());
        }
    }
    // Files a playlist references go up with it, not as media of their own.
    let mut referenced = HashSet::new();
    for path in files.iter().filter(|p| is_playlist(&p.to_string_lossy(), media)) {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        if let Ok(planned) = plan(&text, &Location::File(path.clone()), true) {
            for segment in planned.segments {
                if let Location::File(file) = segment.location {
                    referenced.insert(std::path::absolute(&file).unwrap_or(file));
                }
            }
        }
    }
    Ok(files
        .into_iter()
        .filter(|p| !referenced.contains(&std::path::absolute(p).unwrap_or_else(|_| p.clone())))
        .map(|p| {
            let text = p.to_string_lossy().into_owned();
            let playlist = is_playlist(&text, media);
            (text, playlist)
        })
        .collect())
}

/// One file, with the list entry's metadata over the command's.
fn item(source: &str, playlist: bool, entry: &ListEntry, media: &BatchMedia) -> Result<BatchItem, Error> {
    let parsed = Source::parse(source)?;
    let file = match &parsed {
        Source::File(path) => {
            std::path::absolute(path).unwrap_or_else(|_| path.clone()).to_string_lossy().into_owned()
        }
        _ => source.to_owned(),
    };
    let mut media = match media {
        BatchMedia::Video(meta) if playlist => BatchMedia::M3u8(meta.clone()),
        other => other.clone(),
    };
    let common = match &mut media {
        BatchMedia::Video(meta) | BatchMedia::M3u8(meta) => {
            if entry.reference_id.is_some() {
                meta.reference_id.clone_from(&entry.reference_id);
            }
            if let Some(cate_id) = entry.cate_id {
                meta.cate_id = Some(cate_id);
            }
            if entry.file_name.is_some() {
                meta.file_name.clone_from(&entry.file_name);
            }
            &mut meta.common
        }
        BatchMedia::Image(meta) => {
            if let Some(cate_id) = entry.cate_id {
                meta.cate_id = Some(cate_id);
            }
            if entry.file_name.is_some() {
                meta.file_name.clone_from(&entry.file_name);
            }
            &mut meta.common
        }
        BatchMedia::Attached(meta) => {
            if let Some(cate_id) = entry.cate_id {
                meta.cate_ids = vec![cate_id];
            }
            if entry.file_name.is_some() {
                meta.file_name.clone_from(&entry.file_name);
            }
            &mut meta.common
        }
    };
    if entry.title.is_some() {
        common.title.clone_from(&entry.title);
    }
    if entry.description.is_some() {
        common.description.clone_from(&entry.description);
    }
    if let Some(tags) = &entry.tags {
        common.tags.clone_from(tags);
    }
    if entry.user_data.is_some() {
        common.user_data.clone_from(&entry.user_data);
    }
    Ok(BatchItem { source: parsed, file, media })
}
