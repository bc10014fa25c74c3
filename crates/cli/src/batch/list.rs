//! `--from-list FILE`: one source per line, optionally with its own metadata. A line that starts with `{`
//! is a JSON object (`source` plus any of `title`, `description`, `tags` (a list or a comma string),
//! `cate_id`, `reference_id`, `file_name`, `user_data`); any other line is tab-separated
//! `SOURCE[<TAB>TITLE[<TAB>DESCRIPTION[<TAB>TAGS]]]`. Blank lines and lines starting with `#` are skipped.
//! Relative paths are relative to the list file's folder, so a list travels with its files.

use std::path::Path;

use serde::Deserialize;
use vodup_sdk::{Error, ErrorKind};

/// One line of a list: a source and what it overrides of the command's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListEntry {
    /// A path or URL.
    pub source: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags.
    #[serde(default, deserialize_with = "tags")]
    pub tags: Option<Vec<String>>,
    /// Category id.
    #[serde(default)]
    pub cate_id: Option<i64>,
    /// ReferenceId (videos).
    #[serde(default)]
    pub reference_id: Option<String>,
    /// The FileName to send.
    #[serde(default)]
    pub file_name: Option<String>,
    /// UserData JSON (as a string or an object).
    #[serde(default, deserialize_with = "json_text")]
    pub user_data: Option<String>,
}

fn tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Text(String),
    }
    Ok(Option::<Tags>::deserialize(d)?.map(|tags| match tags {
        Tags::List(list) => list,
        Tags::Text(text) => split_tags(&text),
    }))
}

fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<serde_json::Value>::deserialize(d)?.map(|value| match value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }))
}

fn split_tags(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// Reads and parses the list at `path`.
pub fn read(path: &Path) -> Result<Vec<ListEntry>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, "read the list", format!("cannot read: {e}"))
            .with_path(path)
            .with_hint("give a readable --from-list file")
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|e| e.with_path(path))
}

/// Parses a list whose relative paths are relative to `base`.
pub fn parse(text: &str, base: &Path) -> Result<Vec<ListEntry>, Error> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let bad = |why: String| {
            Error::new(ErrorKind::InvalidInput, "read the list", format!("line {}: {why}", number + 1)).with_hint(
                "write one source per line: a JSON object with \"source\", or SOURCE<TAB>TITLE<TAB>DESCRIPTION<TAB>TAGS",
            )
        };
        let mut entry = if line.trim_start().starts_with('{') {
            serde_json::from_str::<ListEntry>(line).map_err(|e| bad(e.to_string()))?
        } else {
            let mut fields = line.split('\t');
            let field = |f: Option<&str>| f.map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned);
            ListEntry {
                source: fields.next().unwrap_or_default().trim().to_owned(),
                title: field(fields.next()),
                description: field(fields.next()),
                tags: field(fields.next()).map(|t| split_tags(&t)),
                ..ListEntry::default()
            }
        };
        if entry.source.is_empty() {
            return Err(bad("no source".into()));
        }
        let is_url = entry.source.starts_with("http://") || entry.source.starts_with("https://");
        if !is_url && entry.source != "-" && Path::new(&entry.source).is_relative() {
            entry.source = base.join(&entry.source).to_string_lossy().into_owned();
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_separated_and_json_lines_with_comments() {
        let text = "# my videos\n\
                    a.mp4\n\
                    /abs/b.mp4\tB title\tabout b\tx, y\n\
                    \n\
                    {\"source\": \"https://cdn.example/c.mp4\", \"title\": \"C\", \"tags\": [\"t\"], \"cate_id\": 7}\n\
                    {\"source\": \"d.mp4\", \"tags\": \"p,q\", \"user_data\": {\"Extend\": {\"k\": \"v\"}}}\n";
        let entries = parse(text, Path::new("/lists")).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].source, "/lists/a.mp4");
        assert_eq!(entries[1].title.as_deref(), Some("B title"));
        assert_eq!(entries[1].tags, Some(vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(entries[2].source, "https://cdn.example/c.mp4");
        assert_eq!(entries[2].cate_id, Some(7));
        assert_eq!(entries[3].tags, Some(vec!["p".to_owned(), "q".to_owned()]));
        assert_eq!(entries[3].user_data.as_deref(), Some(r#"{"Extend":{"k":"v"}}"#));
    }

    #[test]
    fn bad_lines_name_their_number() {
        let error = parse("ok.mp4\n{\"source\": \"x\", \"titel\": 1}\n", Path::new("/")).unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
