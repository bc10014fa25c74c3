//! Where the catalogue lives, as the `--meta` URL names it (`VODUP_META`, `[server] meta`):
//! `sqlite://PATH` for the embedded file, `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or
//! `postgresql://…`) for a PostgreSQL server. A PostgreSQL URL carries a password, so this type keeps the
//! URL as a [`Secret`] and shows only a redacted form (`postgres://vodup:******@db:5432/vodup`), in logs,
//! errors and `Debug` alike. Opening the catalogue is `crate::serve`'s; this module only parses and shows.

use std::fmt;
use std::path::PathBuf;

use vodup_proto::Secret;

/// The catalogue's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaLocation {
    /// An SQLite file (its parent folder must exist).
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
}

/// A `postgres://` URL: the whole of it secret, a redacted copy for showing.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// The URL as given, password included; read only to connect.
    url: Secret,
    /// The URL with its password (in the user part or a `password=` parameter) replaced by `******`.
    redacted: String,
}

impl PostgresUrl {
    /// The URL as given, password included: only for connecting.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl MetaLocation {
    /// Parses a `--meta` value. The error says what is wrong without repeating the value (it may hold a
    /// password).
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, as in sqlite:///var/lib/vodup/meta.sqlite".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(PostgresUrl { redacted: redact(text), url: Secret::new(text) }));
        }
        let scheme = text.split_once("://").map_or("no scheme", |(scheme, _)| scheme);
        Err(format!(
            "the catalogue URL must start with sqlite:// or postgres:// (it has {scheme:?}), as in \
             sqlite:///var/lib/vodup/meta.sqlite or postgres://USER:PASSWORD@HOST:5432/DATABASE"
        ))
    }
}

impl fmt::Display for MetaLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// The URL with everything between `://` and the last `@` but the user name hidden, and the value of any
/// `password=` parameter hidden. Splitting at the last `@` keeps a password that holds `@`, `/` or `:`
/// (typed without percent-encoding) hidden too.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "******".into() };
    let (query_start, query) = match rest.find('?') {
        Some(at) => (at, &rest[at..]),
        None => (rest.len(), ""),
    };
    let before_query = &rest[..query_start];
    let (authority_and_path, query) = match before_query.rfind('@') {
        Some(at) => {
            let user = before_query[..at].split(':').next().unwrap_or_default();
            let password = if before_query[..at].contains(':') { ":******" } else { "" };
            (format!("{user}{password}@{}", &before_query[at + 1..]), query)
        }
        // A `@` after the `?` may belong to a password typed there: redact the parameters below.
        None => (before_query.to_owned(), query),
    };
    let query: Vec<String> = query
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=******"),
            _ => pair.to_owned(),
        })
        .collect();
    if query.is_empty() {
        format!("{scheme}://{authority_and_path}")
    } else {
        format!("{scheme}://{authority_and_path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        MetaLocation::parse(text).expect("parses").to_string()
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(shown("postgres://vodup:s3cr3t@db:5432/vodup"), "postgres://vodup:******@db:5432/vodup");
        assert_eq!(
            shown("postgresql://u:p@ss:w/rd@h/d?sslmode=require"),
            "postgresql://u:******@h/d?sslmode=require"
        );
        assert_eq!(
            shown("postgres://h/d?user=u&password=s3cr3t&x=1"),
            "postgres://h/d?user=u&password=******&x=1"
        );
        assert_eq!(shown("postgres://u@h/d"), "postgres://u@h/d");
        let location = MetaLocation::parse("postgres://vodup:s3cr3t@db/vodup").unwrap();
        assert!(!format!("{location:?}").contains("s3cr3t"), "Debug shows the password");
        let MetaLocation::Postgres(url) = location else { panic!("a PostgreSQL URL") };
        assert_eq!(url.expose(), "postgres://vodup:s3cr3t@db/vodup");
    }

    #[test]
    fn sqlite_urls_name_a_path() {
        assert_eq!(
            MetaLocation::parse("sqlite:///var/x.db").unwrap(),
            MetaLocation::Sqlite("/var/x.db".into())
        );
        assert_eq!(
            MetaLocation::parse("sqlite://rel/x.db").unwrap(),
            MetaLocation::Sqlite("rel/x.db".into())
        );
        assert!(MetaLocation::parse("sqlite://").unwrap_err().contains("file path"));
    }

    #[test]
    fn other_schemes_are_refused_without_echoing_the_value() {
        let error = MetaLocation::parse("mysql://root:hunter2@h/d").unwrap_err();
        assert!(error.contains("\"mysql\"") && !error.contains("hunter2"), "{error}");
        assert!(MetaLocation::parse("/var/lib/meta.sqlite").unwrap_err().contains("no scheme"));
    }
}
