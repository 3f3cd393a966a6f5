//! The parser stage of an import: the body's bytes as they arrive, read as
//! RFC 4180 CSV (the `csv` crate) on a blocking thread, handed on as the
//! header, then rows in chunks. Nothing here holds more than one chunk.

use std::io::Read;

use axum::body::Bytes;
use tokio::sync::mpsc;

/// One data row: its spreadsheet number and its cells. A cell that is not
/// UTF-8 is `Err` with what could be read of it.
#[derive(Debug)]
pub struct RawRow {
    pub row: u64,
    pub cells: Vec<Result<String, String>>,
}

#[derive(Debug)]
pub enum Parsed {
    /// The header's names (a BOM dropped), or why it could not be read.
    Header(Result<Vec<String>, String>),
    Rows(Vec<RawRow>),
    /// The body stopped being readable (the row where it happened): the
    /// import fails whole.
    Broken {
        row: u64,
        reason: String,
    },
    /// The file ended inside a quoted cell: the last row's cell `cell`
    /// (0-based) opened a quote that nothing closed.
    Unterminated {
        row: u64,
        cell: usize,
    },
}

/// Where RFC 4180 quoting stands after the bytes seen so far (the `csv`
/// crate's reading, which at the end of the input closes an open quote
/// without a word): only `Quoted` at the end is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// At the start of a cell.
    CellStart,
    /// Inside a cell that did not start with a quote (a quote in it is text).
    Plain,
    /// Inside a quoted cell.
    Quoted,
    /// A quote inside a quoted cell: the end of the quoting, or the first
    /// half of `""`.
    QuoteInQuoted,
}

impl Quoting {
    fn step(self, byte: u8) -> Quoting {
        use Quoting::*;
        match (self, byte) {
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (QuoteInQuoted, b'"') | (CellStart, b'"') => Quoted,
            (_, b',' | b'\n' | b'\r') => CellStart,
            _ => Plain,
        }
    }

    fn scan(mut self, bytes: &[u8]) -> Quoting {
        for &b in bytes {
            self = self.step(b);
        }
        self
    }
}

/// The body's chunks as a `Read`, blocking on the channel.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    /// The quoting after every byte handed to the parser.
    quoting: Quoting,
    /// Whether any byte was handed on yet (a leading BOM is no cell text).
    started: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                let taken = self.current.split_to(n);
                let text = if self.started {
                    &taken[..]
                } else {
                    self.started = true;
                    taken.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&taken)
                };
                self.quoting = self.quoting.scan(text);
                buf[..n].copy_from_slice(&taken);
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
    }
}

fn text(field: &[u8]) -> Result<String, String> {
    std::str::from_utf8(field)
        .map(str::to_string)
        .map_err(|_| String::from_utf8_lossy(field).into_owned())
}

/// Starts the parser: header first, then rows `chunk` at a time.
pub fn parse(body: mpsc::Receiver<Result<Bytes, String>>, chunk: usize) -> mpsc::Receiver<Parsed> {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx: body,
            current: Bytes::new(),
            quoting: Quoting::CellStart,
            started: false,
        };
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut record = csv::ByteRecord::new();
        let mut row: u64 = 0;
        // The cells of the last record read (where an open quote would be).
        let mut last_width = 0;
        let mut rows = Vec::with_capacity(chunk);
        loop {
            let more = match csv.read_byte_record(&mut record) {
                Ok(more) => more,
                Err(e) => {
                    let reason = match e.kind() {
                        csv::ErrorKind::Io(io) => format!("the body could not be read: {io}"),
                        other => format!("not CSV: {other:?}"),
                    };
                    let _ = tx.blocking_send(Parsed::Broken {
                        row: row + 1,
                        reason,
                    });
                    return;
                }
            };
            if !more {
                break;
            }
            row += 1;
            last_width = record.len();
            if row == 1 {
                let header = record
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let name = if i == 0 {
                            name.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(name)
                        } else {
                            name
                        };
                        text(name).map(|n| n.trim().to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|lossy| format!("the header is not UTF-8: {lossy}"));
                if tx.blocking_send(Parsed::Header(header)).is_err() {
                    return;
                }
                continue;
            }
            // A line with nothing on it is no row.
            if record.len() == 1 && record[0].is_empty() {
                continue;
            }
            rows.push(RawRow {
                row,
                cells: record.iter().map(text).collect(),
            });
            if rows.len() == chunk {
                let full = std::mem::replace(&mut rows, Vec::with_capacity(chunk));
                if tx.blocking_send(Parsed::Rows(full)).is_err() {
                    return;
                }
            }
        }
        if row == 0 {
            let _ = tx.blocking_send(Parsed::Header(Err("the file is empty".into())));
            return;
        }
        if !rows.is_empty() && tx.blocking_send(Parsed::Rows(rows)).is_err() {
            return;
        }
        if csv.get_ref().quoting == Quoting::Quoted {
            let _ = tx.blocking_send(Parsed::Unterminated {
                row,
                cell: last_width.saturating_sub(1),
            });
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::Quoting;

    fn end(text: &str) -> Quoting {
        Quoting::CellStart.scan(text.as_bytes())
    }

    #[test]
    fn only_a_quote_left_open_at_the_end_is_unterminated() {
        assert_eq!(end("a,\"b\"\"c\"\n"), Quoting::CellStart);
        assert_eq!(end("a,\"b\"\"c\""), Quoting::QuoteInQuoted);
        assert_eq!(end("a,\"line\nbreak"), Quoting::Quoted);
        assert_eq!(end("a,\"b\"\""), Quoting::Quoted);
        // A quote inside an unquoted cell is text (as the csv crate reads it).
        assert_eq!(end("5\" screen,x"), Quoting::Plain);
        assert_eq!(end("\"a\"b,\"c"), Quoting::Quoted);
        assert_eq!(end("\"a\"b\r\n"), Quoting::CellStart);
    }
}
