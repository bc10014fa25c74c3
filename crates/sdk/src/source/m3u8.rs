//! Plans the upload of an HLS media playlist: which files it references, the object name each one gets
//! under the upload address's `ObjectPrefix`, and the playlist text rewritten to point at those names.
//!
//! It exists because VOD stores an M3U8 as the playlist object plus one object per referenced file,
//! all in one "directory" (`ObjectPrefix`, vod-api.md §4), the way voduploadsdk does it (§8): each file
//! goes to `ObjectPrefix + basename` and the uploaded playlist names files by basename. This module is
//! pure: it reads no file, fetches no URL and uploads nothing; callers do that with the [`PlaylistPlan`].
//!
//! The rules, in the order they apply:
//! - The text must start with `#EXTM3U` (a UTF-8 BOM is ignored). Master playlists (variant streams,
//!   `#EXT-X-STREAM-INF`, `#EXT-X-I-FRAME-STREAM-INF`, `#EXT-X-MEDIA`) are refused. `m3u8-rs` is asked
//!   only for that classification; everything else comes from the line pass below, so a valid playlist
//!   that `m3u8-rs` cannot parse is still planned.
//! - Every non-blank line not starting with `#` is a media segment URI. The `URI="…"` of `#EXT-X-MAP` is an
//!   init segment. The `URI="…"` of `#EXT-X-KEY` / `#EXT-X-SESSION-KEY` is planned (as a key) only when
//!   asked; otherwise the line is left alone. Other tags are never touched, even if they carry a URI.
//! - A URI resolves against the playlist: `http(s)` URLs are used as they are (query kept, fragment
//!   dropped). Under a remote playlist, everything else is joined onto the playlist URL and must come
//!   out `http(s)`, so a downloaded playlist can never make us read a local file. Under a local playlist,
//!   `file:` URIs are paths, and relative references lose their query and fragment, are
//!   percent-decoded and joined onto the playlist's folder (an absolute path stays absolute).
//! - The object name is the last path segment, without query or fragment, percent-decoded. Empty, `.`,
//!   `..`, names holding `/`, `\` or control characters, and names over 255 bytes are refused.
//! - A file referenced twice (the same resolved location) is planned once; every reference gets its name.
//! - When different files share a base name, each of them is renamed `<hex>-<basename>`, `<hex>` being
//!   the first 8 lower-case hex digits of the CRC-64/ECMA of the resolved location (the URL string, or
//!   the path's bytes). If that still meets a name already given, more digits are used (up to 16).
//! - The rewrite keeps every other line byte for byte, drops blank lines, ends lines with `\n` (one
//!   after the last line too) and writes each name as a URI reference: space and ``"#%:<>?[]^`{|}`` are
//!   percent-encoded (`seg 1.ts` is written `seg%201.ts`), so a player resolving it asks for exactly the
//!   object name; other characters, non-ASCII included, are written as they are.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use m3u8_rs::Playlist;
use reqwest::Url;
use vodup_proto::crc64;
use vodup_proto::encoding::percent_decode;

/// Longest object name accepted, in bytes: the common file-name limit, so a plan that works here can
/// also be mirrored onto a local disk.
const MAX_NAME_BYTES: usize = 255;

/// Tags whose `URI` is an init segment, and those whose `URI` is a key.
const MAP_TAG: &str = "#EXT-X-MAP:";
const KEY_TAGS: [&str; 2] = ["#EXT-X-KEY:", "#EXT-X-SESSION-KEY:"];

/// Tags that only a master playlist carries (the `:` keeps `#EXT-X-MEDIA-SEQUENCE` out).
const MASTER_TAGS: [&str; 3] = ["#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MEDIA:"];

/// Where a playlist or a file it references lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A local file.
    File(PathBuf),
    /// An `http(s)` URL, query included (signed CDN URLs need it to fetch).
    Url(Url),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => write!(f, "{url}"),
        }
    }
}

/// What a planned file is to the playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// A media segment: a URI line.
    Media,
    /// An initialization section: the `URI` of `#EXT-X-MAP`.
    Init,
    /// A decryption key: the `URI` of `#EXT-X-KEY` or `#EXT-X-SESSION-KEY`, planned only when asked.
    Key,
}

/// One file to upload, once, to `ObjectPrefix + object_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where to read it from.
    pub location: Location,
    /// Its object name under `ObjectPrefix`, as the rewritten playlist refers to it.
    pub object_name: String,
    /// What it is to the playlist.
    pub kind: SegmentKind,
    /// 1-based playlist line of its first reference, so a failed read or upload can say where it came from.
    pub line: usize,
}

/// What to upload for one media playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistPlan {
    /// Every referenced file once, in order of first reference (init segments where they appear).
    pub segments: Vec<Segment>,
    /// The playlist to upload to `UploadAddress.FileName`, pointing at the object names.
    pub rewritten: String,
}

/// Why a playlist cannot be planned. Each message names the line and URI at fault and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    /// The text does not start with `#EXTM3U`.
    #[error(
        "not an M3U8 playlist: the first line is `{first_line}`, not `#EXTM3U`; pass the .m3u8 media playlist"
    )]
    NotM3u8 {
        /// The first line as found (shortened).
        first_line: String,
    },
    /// A master playlist, listing variant streams rather than segments.
    #[error(
        "master playlists are not supported yet{}: upload each media playlist it lists on its own",
        .line.map(|line| format!(" (variant streams from line {line})")).unwrap_or_default()
    )]
    MasterPlaylist {
        /// First line carrying a master-only tag, when one was found.
        line: Option<usize>,
    },
    /// No URI line: nothing to upload.
    #[error(
        "the playlist lists no media segment (no URI line), so there is nothing to upload; \
         pass a media playlist that lists its segments"
    )]
    NoMediaSegments,
    /// A tag's attribute list could not be read.
    #[error("line {line}: malformed tag ({reason}); fix the attribute list (NAME=VALUE,NAME=\"quoted\")")]
    MalformedTag {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A URI that cannot be read from here.
    #[error("line {line}: cannot upload `{uri}`: {reason}")]
    UnsupportedUri {
        /// 1-based line number.
        line: usize,
        /// The URI as written.
        uri: String,
        /// Why, and what would work instead.
        reason: String,
    },
    /// A URI whose file name cannot be an object name.
    #[error("line {line}: `{uri}` does not give a usable object name: {reason}; rename the file")]
    BadObjectName {
        /// 1-based line number.
        line: usize,
        /// The URI as written.
        uri: String,
        /// What is wrong with the name.
        reason: String,
    },
}

/// Plans the upload of the media playlist `text`, which was read from `playlist`. Keys (`#EXT-X-KEY`) are
/// uploaded and rewritten only if `include_keys`; see the module doc for every rule.
///
/// # Errors
/// A [`PlaylistError`] for a text that is not a media playlist, lists no segment, or references a file
/// that cannot be read from here or cannot be named as an object.
pub fn plan(text: &str, playlist: &Location, include_keys: bool) -> Result<PlaylistPlan, PlaylistError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).collect();
    let first_line = lines.first().copied().unwrap_or_default();
    if first_line.trim_end() != "#EXTM3U" {
        return Err(PlaylistError::NotM3u8 { first_line: first_line.chars().take(60).collect() });
    }
    refuse_master(text, &lines)?;

    let mut planner = Planner { playlist, entries: Vec::new(), by_location: HashMap::new() };
    let mut output = Vec::with_capacity(lines.len());
    for (index, &line) in lines.iter().enumerate() {
        let number = index + 1;
        let uri = line.trim();
        if uri.is_empty() {
            continue;
        }
        if !uri.starts_with('#') {
            let slot = planner.reference(number, uri, SegmentKind::Media)?;
            output.push(OutputLine::Uri { slot });
        } else if line.starts_with(MAP_TAG) {
            let Some(value) = uri_attribute(line, MAP_TAG.len(), number)? else {
                let reason = "#EXT-X-MAP has no URI attribute".to_owned();
                return Err(PlaylistError::MalformedTag { line: number, reason });
            };
            let slot = planner.reference(number, &line[value.clone()], SegmentKind::Init)?;
            output.push(OutputLine::Attribute { line, value, slot });
        } else if include_keys && let Some(tag) = KEY_TAGS.iter().find(|tag| line.starts_with(*tag)) {
            // METHOD=NONE carries no URI: the line is kept as it is.
            match uri_attribute(line, tag.len(), number)? {
                Some(value) => {
                    let slot = planner.reference(number, &line[value.clone()], SegmentKind::Key)?;
                    output.push(OutputLine::Attribute { line, value, slot });
                }
                None => output.push(OutputLine::Kept(line)),
            }
        } else {
            output.push(OutputLine::Kept(line));
        }
    }
    // Checked on the lines, not the entries: a media segment that is also the init section keeps kind Init.
    if !output.iter().any(|line| matches!(line, OutputLine::Uri { .. })) {
        return Err(PlaylistError::NoMediaSegments);
    }
    let names = assign_names(&planner.entries)?;

    let mut rewritten = String::with_capacity(text.len());
    for line in output {
        match line {
            OutputLine::Kept(line) => rewritten.push_str(line),
            OutputLine::Uri { slot } => rewritten.push_str(&uri_reference(&names[slot])),
            OutputLine::Attribute { line, value, slot } => {
                rewritten.push_str(&line[..value.start]);
                rewritten.push_str(&uri_reference(&names[slot]));
                rewritten.push_str(&line[value.end..]);
            }
        }
        rewritten.push('\n');
    }
    let segments = planner
        .entries
        .into_iter()
        .zip(names)
        .map(|(entry, object_name)| Segment {
            location: entry.location,
            object_name,
            kind: entry.kind,
            line: entry.line,
        })
        .collect();
    Ok(PlaylistPlan { segments, rewritten })
}

/// One line of the rewritten playlist.
enum OutputLine<'a> {
    /// Copied as it is.
    Kept(&'a str),
    /// A URI line, replaced by the name of planned file `slot`.
    Uri { slot: usize },
    /// A tag whose quoted `URI` value (the byte range `value`) becomes the name of planned file `slot`.
    Attribute { line: &'a str, value: Range<usize>, slot: usize },
}

/// A planned file before names are settled: collisions are only known once every line has been read.
struct Entry {
    location: Location,
    kind: SegmentKind,
    line: usize,
    uri: String,
    base_name: String,
}

/// Resolves references and keeps each distinct location once, in order of first reference.
struct Planner<'a> {
    playlist: &'a Location,
    entries: Vec<Entry>,
    by_location: HashMap<Location, usize>,
}

impl Planner<'_> {
    /// Plans the file `uri` (written on line `line`) and returns its slot in `entries`.
    fn reference(&mut self, line: usize, uri: &str, kind: SegmentKind) -> Result<usize, PlaylistError> {
        let (location, name_path) = resolve(self.playlist, uri)
            .map_err(|reason| PlaylistError::UnsupportedUri { line, uri: uri.to_owned(), reason })?;
        let base_name = base_name(&name_path).map_err(|reason| PlaylistError::BadObjectName {
            line,
            uri: uri.to_owned(),
            reason,
        })?;
        if let Some(&slot) = self.by_location.get(&location) {
            return Ok(slot);
        }
        let slot = self.entries.len();
        self.by_location.insert(location.clone(), slot);
        self.entries.push(Entry { location, kind, line, uri: uri.to_owned(), base_name });
        Ok(slot)
    }
}

/// Refuses a master playlist. `m3u8-rs` classifies; the tag scan also catches a master tag it would
/// overlook (it decides from the first tag it recognises) and finds the line to report.
fn refuse_master(text: &str, lines: &[&str]) -> Result<(), PlaylistError> {
    let tag_line = lines.iter().position(|line| MASTER_TAGS.iter().any(|tag| line.starts_with(tag)));
    let parser_says_master = matches!(
        m3u8_rs::parse_playlist_res(text.as_bytes()),
        Ok(Playlist::MasterPlaylist(master)) if !master.variants.is_empty() || !master.alternatives.is_empty()
    );
    if tag_line.is_some() || parser_says_master {
        return Err(PlaylistError::MasterPlaylist { line: tag_line.map(|index| index + 1) });
    }
    Ok(())
}

/// Finds the `URI` attribute of the tag `line`, whose attribute list starts at byte `start`, and returns
/// the byte range of its value inside the quotes. Quoted strings may hold commas (RFC 8216 §4.2).
fn uri_attribute(line: &str, start: usize, number: usize) -> Result<Option<Range<usize>>, PlaylistError> {
    let malformed = |reason: String| PlaylistError::MalformedTag { line: number, reason };
    let mut pos = start;
    while pos < line.len() {
        let rest = &line[pos..];
        let Some(equals) = rest.find('=') else {
            return Err(malformed(format!("attribute `{}` has no `=`", rest.trim())));
        };
        let name = rest[..equals].trim();
        let value_start = pos + equals + 1;
        let (value, quoted, next) = if line[value_start..].starts_with('"') {
            let Some(close) = line[value_start + 1..].find('"') else {
                return Err(malformed(format!("the value of {name} has no closing quote")));
            };
            let value = value_start + 1..value_start + 1 + close;
            let after = value.end + 1;
            if !(line[after..].is_empty() || line[after..].starts_with(',')) {
                return Err(malformed(format!("expected `,` after the quoted value of {name}")));
            }
            (value, true, after + 1)
        } else {
            let end = line[value_start..].find(',').map_or(line.len(), |comma| value_start + comma);
            (value_start..end, false, end + 1)
        };
        if name == "URI" {
            if !quoted {
                return Err(malformed("the URI attribute must be a quoted string".to_owned()));
            }
            return Ok(Some(value));
        }
        pos = next;
    }
    Ok(None)
}

/// Resolves `uri` against the playlist's location. Returns the file's location and the path whose last
/// segment (still percent-encoded) names it, or why it cannot be read from here.
fn resolve(playlist: &Location, uri: &str) -> Result<(Location, String), String> {
    match playlist {
        Location::Url(base) => {
            let url = base.join(uri).map_err(|error| format!("it is not a valid URI reference ({error})"))?;
            fetchable(url)
        }
        Location::File(_) if has_scheme(uri) => {
            let url = Url::parse(uri).map_err(|error| format!("it is not a valid URL ({error})"))?;
            if url.scheme() != "file" {
                return fetchable(url);
            }
            let path = url.to_file_path().map_err(|()| {
                "this file: URI names no local path (only an empty host or localhost can be read); \
                 write it as a path"
                    .to_owned()
            })?;
            let name_path = url.path().to_owned();
            Ok((Location::File(path.components().collect()), name_path))
        }
        Location::File(playlist_path) => {
            // A URI reference, not a file name: `?` and `#` end the path and `%XX` escapes a byte.
            let reference = strip_query_and_fragment(uri);
            let decoded = percent_decode(reference)
                .map_err(|_| "its percent-escapes do not decode to UTF-8".to_owned())?;
            // Joining an absolute path replaces the folder, which is what `/x/y.ts` means.
            let folder = playlist_path.parent().unwrap_or(Path::new(""));
            let path: PathBuf = folder.join(decoded).components().collect();
            Ok((Location::File(path), reference.to_owned()))
        }
    }
}

/// Accepts an absolute URL only if it can be fetched over HTTP; a remote playlist pointing at `file:`
/// would otherwise make the uploader publish local files.
fn fetchable(mut url: Url) -> Result<(Location, String), String> {
    match url.scheme() {
        "http" | "https" => {
            // The fragment is never sent, so it must not make two references look like two files.
            url.set_fragment(None);
            let name_path = url.path().to_owned();
            Ok((Location::Url(url), name_path))
        }
        "file" => Err("a remote playlist may not reference local files; use http(s) URLs or relative \
                       references, or download the playlist and its files and upload the local copy"
            .to_owned()),
        other => {
            Err(format!("`{other}:` URIs cannot be fetched; only http(s) URLs and relative references can"))
        }
    }
}

/// Whether `uri` starts with an RFC 3986 scheme (`ALPHA *(ALPHA / DIGIT / "+" / "-" / ".") ":"`).
fn has_scheme(uri: &str) -> bool {
    let Some(colon) = uri.find(':') else { return false };
    let scheme = &uri[..colon];
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The path part of a URI reference: everything before the first `?` or `#`.
fn strip_query_and_fragment(uri: &str) -> &str {
    uri.find(['?', '#']).map_or(uri, |end| &uri[..end])
}

/// The object name a path gives: its last segment, percent-decoded, if that is a plain file name.
fn base_name(path: &str) -> Result<String, String> {
    let last = path.rsplit('/').next().unwrap_or(path);
    let name = percent_decode(last).map_err(|_| "its percent-escapes do not decode to UTF-8".to_owned())?;
    if name.is_empty() {
        return Err("it has no file name (it is empty or ends in `/`)".to_owned());
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not a file name"));
    }
    if name.contains(['/', '\\']) {
        return Err(format!("the name `{name}` holds a path separator once percent-decoded"));
    }
    if name.chars().any(char::is_control) {
        return Err("the name holds a control character once percent-decoded".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("the name is {} bytes long, over the {MAX_NAME_BYTES}-byte limit", name.len()));
    }
    Ok(name)
}

/// Gives every entry its object name: its base name when no other file has it, otherwise the base name
/// behind a CRC-64 prefix, lengthened until no other name is the same.
fn assign_names(entries: &[Entry]) -> Result<Vec<String>, PlaylistError> {
    let mut holders: HashMap<&str, usize> = HashMap::new();
    for entry in entries {
        *holders.entry(entry.base_name.as_str()).or_default() += 1;
    }
    let unique = |entry: &Entry| holders[entry.base_name.as_str()] == 1;
    // Plain names are settled first so a prefixed name can never take one.
    let mut taken: HashSet<String> =
        entries.iter().filter(|entry| unique(entry)).map(|entry| entry.base_name.clone()).collect();
    let mut names = Vec::with_capacity(entries.len());
    for entry in entries {
        if unique(entry) {
            names.push(entry.base_name.clone());
            continue;
        }
        let hex = format!("{:016x}", crc64::checksum(&identity(&entry.location)));
        let name = (8..=hex.len())
            .map(|digits| format!("{}-{}", &hex[..digits], entry.base_name))
            .find(|candidate| !taken.contains(candidate));
        let Some(name) = name else {
            let reason = format!("no unique name is left for `{}`", entry.base_name);
            return Err(PlaylistError::BadObjectName { line: entry.line, uri: entry.uri.clone(), reason });
        };
        if name.len() > MAX_NAME_BYTES {
            let reason = format!(
                "another file has the same name, and the prefixed `{name}` is over {MAX_NAME_BYTES} bytes"
            );
            return Err(PlaylistError::BadObjectName { line: entry.line, uri: entry.uri.clone(), reason });
        }
        taken.insert(name.clone());
        names.push(name);
    }
    Ok(names)
}

/// The bytes a location's collision prefix is computed from: the URL string, or the path's bytes.
fn identity(location: &Location) -> Vec<u8> {
    match location {
        Location::File(path) => path.as_os_str().as_encoded_bytes().to_vec(),
        Location::Url(url) => url.as_str().as_bytes().to_vec(),
    }
}

/// Writes an object name as a relative URI reference that resolves to exactly that name: the characters
/// that would end it, start a query or fragment, read as a scheme or escape, or that players reject, are
/// percent-encoded. Names come from [`base_name`], so they hold no `/`, `\` or control character.
fn uri_reference(name: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii() && " \"#%:<>?[]^`{|}".contains(c) {
            let byte = c as u8;
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(path: &str) -> Location {
        Location::File(PathBuf::from(path))
    }

    fn remote(url: &str) -> Location {
        Location::Url(Url::parse(url).unwrap())
    }

    fn media(location: Location, object_name: &str, line: usize) -> Segment {
        Segment { location, object_name: object_name.to_owned(), kind: SegmentKind::Media, line }
    }

    fn names(plan: &PlaylistPlan) -> Vec<&str> {
        plan.segments.iter().map(|segment| segment.object_name.as_str()).collect()
    }

    fn prefix(location: &str) -> String {
        format!("{:08x}", crc64::checksum(location.as_bytes()) >> 32)
    }

    #[test]
    fn ffmpeg_playlist_with_segment_folder_is_planned_and_flattened() {
        // `ffmpeg -f lavfi -i testsrc=duration=3 -f hls -hls_time 1 -hls_segment_filename 'seg/%03d.ts'
        // index.m3u8`, byte for byte.
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n\
                    #EXTINF:1.000000,\nseg/000.ts\n#EXTINF:1.000000,\nseg/001.ts\n#EXTINF:1.000000,\n\
                    seg/002.ts\n#EXT-X-ENDLIST\n";
        let plan = plan(text, &local("/media/show/index.m3u8"), false).unwrap();
        assert_eq!(
            plan.segments,
            vec![
                media(local("/media/show/seg/000.ts"), "000.ts", 6),
                media(local("/media/show/seg/001.ts"), "001.ts", 8),
                media(local("/media/show/seg/002.ts"), "002.ts", 10),
            ]
        );
        assert_eq!(plan.rewritten, text.replace("seg/", ""));
    }

    #[test]
    fn local_playlist_resolves_relative_absolute_file_and_http_references() {
        let text = "#EXTM3U\n#EXTINF:2,\nseg/a.ts?v=1#t=0\n#EXTINF:2,\n/abs/b.ts\n#EXTINF:2,\n\
                    file:///mnt/c.ts\n#EXTINF:2,\nhttps://cdn.example.com/d.ts?sig=x\n";
        let plan = plan(text, &local("relative/index.m3u8"), false).unwrap();
        assert_eq!(
            plan.segments,
            vec![
                media(local("relative/seg/a.ts"), "a.ts", 3),
                media(local("/abs/b.ts"), "b.ts", 5),
                media(local("/mnt/c.ts"), "c.ts", 7),
                media(remote("https://cdn.example.com/d.ts?sig=x"), "d.ts", 9),
            ]
        );
    }

    #[test]
    fn remote_playlist_joins_relative_parent_absolute_path_and_url_references() {
        let text = "#EXTM3U\n#EXTINF:4,\n000.ts?part=1\n#EXTINF:4,\n../shared/001.ts\n#EXTINF:4,\n\
                    /abs/002.ts\n#EXTINF:4,\nhttps://other.example.net/x/003.ts?sig=q#frag\n#EXT-X-ENDLIST\n";
        let playlist = remote("https://cdn.example.com/vod/show/index.m3u8?token=abc");
        let plan = plan(text, &playlist, false).unwrap();
        assert_eq!(
            plan.segments,
            vec![
                media(remote("https://cdn.example.com/vod/show/000.ts?part=1"), "000.ts", 3),
                media(remote("https://cdn.example.com/vod/shared/001.ts"), "001.ts", 5),
                media(remote("https://cdn.example.com/abs/002.ts"), "002.ts", 7),
                media(remote("https://other.example.net/x/003.ts?sig=q"), "003.ts", 9),
            ]
        );
        assert_eq!(
            plan.rewritten,
            "#EXTM3U\n#EXTINF:4,\n000.ts\n#EXTINF:4,\n001.ts\n#EXTINF:4,\n002.ts\n#EXTINF:4,\n003.ts\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn init_segment_with_byte_range_is_planned_once_in_place() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"fmp4/init.mp4\",BYTERANGE=\"720@0\"\n\
                    #EXTINF:2,\n#EXT-X-BYTERANGE:1000@720\nfmp4/main.mp4\n#EXT-X-DISCONTINUITY\n\
                    #EXT-X-MAP:BYTERANGE=\"720@0\",URI=\"fmp4/init.mp4\"\n#EXTINF:2,\n\
                    #EXT-X-BYTERANGE:1000@1720\nfmp4/main.mp4\n";
        let plan = plan(text, &local("/v/index.m3u8"), false).unwrap();
        assert_eq!(
            plan.segments,
            vec![
                Segment {
                    location: local("/v/fmp4/init.mp4"),
                    object_name: "init.mp4".to_owned(),
                    kind: SegmentKind::Init,
                    line: 3,
                },
                media(local("/v/fmp4/main.mp4"), "main.mp4", 6),
            ]
        );
        assert_eq!(
            plan.rewritten,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\n#EXTINF:2,\n\
             #EXT-X-BYTERANGE:1000@720\nmain.mp4\n#EXT-X-DISCONTINUITY\n\
             #EXT-X-MAP:BYTERANGE=\"720@0\",URI=\"init.mp4\"\n#EXTINF:2,\n#EXT-X-BYTERANGE:1000@1720\n\
             main.mp4\n"
        );
    }

    #[test]
    fn keys_are_left_alone_unless_included() {
        let text = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"keys/k1.key?id=1\",IV=0x0F\n#EXTINF:2,\na.ts\n\
                    #EXT-X-KEY:METHOD=NONE\n#EXTINF:2,\nb.ts\n";
        let kept = plan(text, &remote("https://h.example/p/index.m3u8"), false).unwrap();
        assert_eq!(names(&kept), ["a.ts", "b.ts"]);
        assert_eq!(kept.rewritten, text);

        let included = plan(text, &remote("https://h.example/p/index.m3u8"), true).unwrap();
        assert_eq!(
            included.segments[0],
            Segment {
                location: remote("https://h.example/p/keys/k1.key?id=1"),
                object_name: "k1.key".to_owned(),
                kind: SegmentKind::Key,
                line: 2,
            }
        );
        assert_eq!(names(&included), ["k1.key", "a.ts", "b.ts"]);
        assert_eq!(included.rewritten, text.replace("keys/k1.key?id=1", "k1.key"));
    }

    #[test]
    fn session_key_before_the_segments_does_not_make_a_master_playlist() {
        // m3u8-rs classifies by the first tag it knows, and #EXT-X-SESSION-KEY is a master tag to it.
        let text = "#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k.key\"\n#EXTINF:2,\na.ts\n";
        assert!(matches!(m3u8_rs::parse_playlist_res(text.as_bytes()), Ok(Playlist::MasterPlaylist(_))));
        let plan = plan(text, &local("/v/index.m3u8"), true).unwrap();
        assert_eq!(names(&plan), ["k.key", "a.ts"]);
        assert_eq!(plan.segments[0].kind, SegmentKind::Key);
    }

    #[test]
    fn quoted_commas_do_not_split_attributes() {
        let text = "#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1,2\",URI=\"init,v2.mp4\"\n#EXTINF:2,\na.ts\n";
        let plan = plan(text, &local("/v/x.m3u8"), false).unwrap();
        assert_eq!(plan.segments[0].location, local("/v/init,v2.mp4"));
        assert_eq!(plan.rewritten, text);

        let unterminated = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\n#EXTINF:2,\na.ts\n";
        let error = super::plan(unterminated, &local("/v/x.m3u8"), false).unwrap_err();
        assert!(matches!(error, PlaylistError::MalformedTag { line: 2, .. }), "{error}");
    }

    #[test]
    fn same_base_name_in_different_folders_gets_stable_distinct_prefixes() {
        let text = "#EXTM3U\n#EXTINF:2,\na/x.ts\n#EXTINF:2,\nb/x.ts\n#EXTINF:2,\ny.ts\n";
        let playlist = remote("https://h.example/p/index.m3u8");
        let first = plan(text, &playlist, false).unwrap();
        let a = format!("{}-x.ts", prefix("https://h.example/p/a/x.ts"));
        let b = format!("{}-x.ts", prefix("https://h.example/p/b/x.ts"));
        assert_ne!(a, b);
        assert_eq!(names(&first), [a.as_str(), b.as_str(), "y.ts"]);
        assert_eq!(first.rewritten, format!("#EXTM3U\n#EXTINF:2,\n{a}\n#EXTINF:2,\n{b}\n#EXTINF:2,\ny.ts\n"));
        assert_eq!(plan(text, &playlist, false).unwrap(), first);

        // Local files hash the path's bytes.
        let plan = plan(text, &local("/m/index.m3u8"), false).unwrap();
        assert_eq!(plan.segments[0].object_name, format!("{}-x.ts", prefix("/m/a/x.ts")));
    }

    #[test]
    fn prefixed_name_that_meets_a_plain_name_takes_more_digits() {
        let playlist = remote("https://h.example/p/index.m3u8");
        let full = format!("{:016x}", crc64::checksum(b"https://h.example/p/a/x.ts"));
        let plain = format!("{}-x.ts", &full[..8]);
        let text = format!("#EXTM3U\n#EXTINF:2,\na/x.ts\n#EXTINF:2,\nb/x.ts\n#EXTINF:2,\n{plain}\n");
        let plan = plan(&text, &playlist, false).unwrap();
        assert_eq!(plan.segments[0].object_name, format!("{}-x.ts", &full[..9]));
        assert_eq!(plan.segments[2].object_name, plain);
    }

    #[test]
    fn a_file_referenced_twice_is_planned_once() {
        let text = "#EXTM3U\n#EXTINF:2,\nseg.ts\n#EXTINF:2,\n./seg.ts\n#EXTINF:2,\nseg.ts#frag\n";
        for playlist in [remote("https://h.example/p/index.m3u8"), local("/p/index.m3u8")] {
            let plan = plan(text, &playlist, false).unwrap();
            assert_eq!(names(&plan), ["seg.ts"], "{playlist}");
            assert_eq!(
                plan.rewritten,
                "#EXTM3U\n#EXTINF:2,\nseg.ts\n#EXTINF:2,\nseg.ts\n#EXTINF:2,\nseg.ts\n"
            );
        }
    }

    #[test]
    fn master_playlist_is_refused() {
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=640x360\nlow/index.m3u8\n\
                    #EXT-X-STREAM-INF:BANDWIDTH=2560000\nhigh/index.m3u8\n";
        let error = plan(text, &local("/v/master.m3u8"), false).unwrap_err();
        assert_eq!(error, PlaylistError::MasterPlaylist { line: Some(2) });
        let message = error.to_string();
        assert!(message.contains("not supported yet") && message.contains("on its own"), "{message}");
    }

    #[test]
    fn remote_playlist_may_not_reference_local_files_or_other_schemes() {
        let playlist = remote("https://h.example/p/index.m3u8");
        for (uri, says) in [("file:///etc/passwd", "local files"), ("data:text/plain,x", "`data:`")] {
            let text = format!("#EXTM3U\n#EXTINF:2,\na.ts\n#EXTINF:2,\n{uri}\n");
            let error = plan(&text, &playlist, false).unwrap_err();
            assert!(matches!(error, PlaylistError::UnsupportedUri { line: 5, .. }), "{error}");
            let message = error.to_string();
            assert!(message.starts_with("line 5: ") && message.contains(says), "{message}");
        }
    }

    #[test]
    fn crlf_bom_and_blank_lines_are_normalised() {
        let text = "\u{feff}#EXTM3U\r\n\r\n#EXT-X-TARGETDURATION:2\r\n#EXTINF:2.0,\r\n\r\nseg/a.ts\r\n   \r\n\
                    #EXT-X-ENDLIST";
        let plan = plan(text, &local("/v/index.m3u8"), false).unwrap();
        assert_eq!(plan.rewritten, "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\na.ts\n#EXT-X-ENDLIST\n");
        assert_eq!(plan.segments, vec![media(local("/v/seg/a.ts"), "a.ts", 6)]);
    }

    #[test]
    fn percent_encoded_names_are_decoded_and_reencoded_in_the_rewrite() {
        let text = "#EXTM3U\n#EXTINF:2,\nseg%201.ts\n#EXTINF:2,\nq%3F%23%25.ts\n";
        let plan = plan(text, &local("dir/index.m3u8"), false).unwrap();
        assert_eq!(
            plan.segments,
            vec![media(local("dir/seg 1.ts"), "seg 1.ts", 3), media(local("dir/q?#%.ts"), "q?#%.ts", 5)]
        );
        assert_eq!(plan.rewritten, "#EXTM3U\n#EXTINF:2,\nseg%201.ts\n#EXTINF:2,\nq%3F%23%25.ts\n");

        let plan = super::plan(text, &remote("https://h.example/p/i.m3u8"), false).unwrap();
        assert_eq!(plan.segments[0].location, remote("https://h.example/p/seg%201.ts"));
        assert_eq!(plan.segments[0].object_name, "seg 1.ts");
    }

    #[test]
    fn unusable_names_are_refused_with_their_line() {
        let long = "x".repeat(256);
        let playlists = [local("/v/index.m3u8"), remote("https://h.example/v/index.m3u8")];
        for uri in ["..", "seg/", ".", "a%2Fb.ts", "a%5Cb.ts", "a%0Ab.ts", "%FF.ts", long.as_str()] {
            for playlist in &playlists {
                let text = format!("#EXTM3U\n#EXTINF:2,\nok.ts\n#EXTINF:2,\n{uri}\n");
                let error = plan(&text, playlist, false).unwrap_err();
                assert!(error.to_string().starts_with("line 5: "), "{error}");
                // A local path is decoded whole before it names a file, so a bad escape fails there first.
                if !(uri == "%FF.ts" && matches!(playlist, Location::File(_))) {
                    assert!(matches!(error, PlaylistError::BadObjectName { line: 5, .. }), "{uri}: {error}");
                }
            }
        }
    }

    #[test]
    fn texts_that_are_not_media_playlists_are_refused() {
        let error = plan("<html>", &local("/v/index.m3u8"), false).unwrap_err();
        assert!(error.to_string().contains("`<html>`, not `#EXTM3U`"), "{error}");
        let error = plan("#EXTM3U\n#EXT-X-TARGETDURATION:2\n", &local("/v/i.m3u8"), false).unwrap_err();
        assert_eq!(error, PlaylistError::NoMediaSegments);
        let error = plan("#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n", &local("/v/i.m3u8"), false).unwrap_err();
        assert!(matches!(error, PlaylistError::MalformedTag { line: 2, .. }), "{error}");
    }
}
