//! Byte streams of unknown length (standard input, a pipe, any `AsyncRead`): read once, in order, part
//! by part into reused buffers. They cannot be re-read, so they have no identity and are not resumed
//! across runs.

use super::{ByteStream, Opened, Reader};

pub(crate) fn open(reader: ByteStream, name: Option<String>) -> Opened {
    Opened {
        name,
        size: None,
        identity: None,
        reader: Reader::Sequential(reader),
        display: "standard input".to_owned(),
        path: None,
    }
}
