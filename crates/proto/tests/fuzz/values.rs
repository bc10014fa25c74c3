//! Broken values that replace a field (overflowing numbers, near-valid dates, huge repeats, random
//! text) and byte-level edits of an existing value.

use proptest::prelude::*;
use proptest::sample::select;

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "+1",
    "01",
    "00000000000000000000000001",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "10000000000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "253402300799",
    "253402300800",
    "1099511627775",
    "604800",
    "604801",
    "-9223372036854775808",
    " 1",
    "1 ",
    "1e9",
    "0x10",
    "NaN",
    "１２３",
];

const DATES: &[&str] = &[
    "20261125T080000Z",
    "99991231T235959Z",
    "00000101T000000Z",
    "20261325T250000Z",
    "20260229T000000Z",
    "202611250T80000Z",
    "+20261125T080000Z",
    "2026-11-25T08:00:00Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "-001-01-01T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "2026-11-25T08:00:60Z",
    "Wed, 25 Nov 2026 08:00:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Sat, 01 Jan 10000 00:00:00 GMT",
    "Wednesday, 25-Nov-26 08:00:00 GMT",
    "Wed Nov 25 08:00:00 2026",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Wed, 31 Dec 1969 23:59:59 GMT",
];

/// The longest value a repeat makes: large enough to expose quadratic work and unbounded allocation,
/// small enough that 10,000 cases stay quick in a debug build.
pub const MAX_REPEAT_BYTES: usize = 64 * 1024;

/// Pieces that parsers split on or look for, to repeat thousands of times.
const UNITS: &[&str] = &[
    "9",
    "a",
    ",",
    ";",
    "=",
    "/",
    "%",
    "%2F",
    "%FF",
    "&",
    " ",
    "Credential=a/b/c/d/e,",
    "Signature=ab,",
    "AdditionalHeaders=x;",
    "x-oss-",
    "<Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part>",
    "<a>",
    "\u{1F600}",
];

/// Mostly near-valid broken values, sometimes plain random text.
pub fn broken() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(NUMBERS).prop_map(str::to_owned),
        3 => select(DATES).prop_map(str::to_owned),
        2 => (select(UNITS), 1usize..=4096).prop_map(|(unit, n)| unit.repeat(n.min(MAX_REPEAT_BYTES / unit.len()))),
        2 => "[ -~]{0,48}",
        1 => any::<String>(),
        1 => Just(String::new()),
    ]
    .boxed()
}

/// A byte-level edit of an existing value.
#[derive(Debug, Clone)]
pub enum Edit {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, char),
    Repeat(usize),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Insert(at, c)),
        (2usize..=2000).prop_map(Edit::Repeat),
    ]
}

impl Edit {
    pub fn apply(&self, text: &str) -> String {
        let boundary = |at: usize| {
            let mut at = if text.is_empty() { 0 } else { at % (text.len() + 1) };
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            at
        };
        match self {
            Self::Truncate(at) => text[..boundary(*at)].to_owned(),
            Self::Flip(at, bit) => {
                let mut bytes = text.as_bytes().to_vec();
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] ^= bit;
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Self::Insert(at, c) => {
                let at = boundary(*at);
                format!("{}{c}{}", &text[..at], &text[at..])
            }
            Self::Repeat(n) => text.repeat((*n).min(MAX_REPEAT_BYTES / text.len().max(1)).max(1)),
        }
    }
}
