//! The `Range` header as rest-server answers it (Go's `http.ServeContent`): a list of byte
//! ranges; ranges wholly past the end are dropped; none left is 416 with `bytes */SIZE`;
//! anything malformed is 416; ranges that together ask for more than the file are ignored
//! (the whole file, 200); one range is a plain 206, several a `multipart/byteranges` 206.

/// `len` bytes from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub len: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ranges {
    Whole,
    One(Span),
    Many(Vec<Span>),
    /// Not a byte-range header, or a range that cannot be read.
    Invalid,
    /// Every range begins past the end of the file.
    NoOverlap,
}

/// More ranges than this in one request get the whole file: each part costs a header and a
/// read, and no client needs that many (restic asks for one).
pub const MAX_RANGES: usize = 100;

pub fn parse(header: Option<&str>, size: u64) -> Ranges {
    let Some(h) = header.filter(|h| !h.is_empty()) else {
        return Ranges::Whole;
    };
    let Some(list) = h.strip_prefix("bytes=") else {
        return Ranges::Invalid;
    };
    let mut spans = Vec::new();
    let mut past_end = false;
    for item in list.split(',') {
        let item = item.trim_matches([' ', '\t']);
        if item.is_empty() {
            continue;
        }
        let Some((a, b)) = item.split_once('-') else {
            return Ranges::Invalid;
        };
        let (a, b) = (a.trim_matches([' ', '\t']), b.trim_matches([' ', '\t']));
        if a.is_empty() {
            // The last `b` bytes.
            let Some(n) = number(b) else {
                return Ranges::Invalid;
            };
            if n == 0 || size == 0 {
                // Nothing to send (Go answers an empty 206 with an impossible Content-Range
                // here; an empty suffix is unsatisfiable by RFC 9110).
                past_end = true;
                continue;
            }
            let n = n.min(size);
            spans.push(Span {
                start: size - n,
                len: n,
            });
            continue;
        }
        let Some(start) = number(a) else {
            return Ranges::Invalid;
        };
        if start >= size {
            past_end = true;
            continue;
        }
        let last = if b.is_empty() {
            size - 1
        } else {
            match number(b) {
                Some(e) if e >= start => e.min(size - 1),
                _ => return Ranges::Invalid,
            }
        };
        spans.push(Span {
            start,
            len: last - start + 1,
        });
    }
    match spans.len() {
        0 if past_end => Ranges::NoOverlap,
        0 => Ranges::Whole,
        1 => Ranges::One(spans[0]),
        n if n > MAX_RANGES => Ranges::Whole,
        _ => {
            let total = spans
                .iter()
                .try_fold(0u64, |t, s| t.checked_add(s.len))
                .unwrap_or(u64::MAX);
            if total > size {
                Ranges::Whole
            } else {
                Ranges::Many(spans)
            }
        }
    }
}

/// A decimal number as Go's ParseInt reads it for a range: ASCII digits, an optional `+`,
/// and no more than fits.
fn number(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().filter(|&n| n <= i64::MAX as u64)
}

/// `bytes A-B/SIZE` for a part or a single-range answer.
pub fn content_range(s: Span, size: u64) -> String {
    format!("bytes {}-{}/{size}", s.start, s.start + s.len - 1)
}

/// A multipart/byteranges body laid out the way Go's multipart writer writes it: each part's
/// headers (sorted by name) before its bytes, a CRLF before every boundary but the first,
/// and the closing boundary. Returns the pieces in order.
pub fn multipart(spans: &[Span], size: u64, boundary: &str, ctype: &str) -> Vec<Piece> {
    let mut out = Vec::with_capacity(spans.len() * 2 + 1);
    for (i, s) in spans.iter().enumerate() {
        let lead = if i == 0 { "" } else { "\r\n" };
        out.push(Piece::Text(format!(
            "{lead}--{boundary}\r\nContent-Range: {}\r\nContent-Type: {ctype}\r\n\r\n",
            content_range(*s, size)
        )));
        out.push(Piece::File(*s));
    }
    out.push(Piece::Text(format!("\r\n--{boundary}--\r\n")));
    out
}

/// Part of a response body: literal text, or bytes of the file.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    File(Span),
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Text(t) => t.len() as u64,
            Piece::File(s) => s.len,
        }
    }
}

/// A boundary like Go's (30 random bytes in hex), so answers have rest-server's lengths.
pub fn boundary() -> String {
    hex::encode(rand::random::<[u8; 30]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(start: u64, len: u64) -> Ranges {
        Ranges::One(Span { start, len })
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse(None, 10), Ranges::Whole);
        assert_eq!(parse(Some(""), 10), Ranges::Whole);
        assert_eq!(parse(Some("bytes=0-"), 10), one(0, 10));
        assert_eq!(parse(Some("bytes=2-4"), 10), one(2, 3));
        assert_eq!(parse(Some("bytes= 2 - 4 "), 10), one(2, 3));
        assert_eq!(parse(Some("bytes=2-400"), 10), one(2, 8));
        assert_eq!(parse(Some("bytes=-3"), 10), one(7, 3));
        assert_eq!(parse(Some("bytes=-30"), 10), one(0, 10));
        assert_eq!(parse(Some("bytes=10-"), 10), Ranges::NoOverlap);
        assert_eq!(parse(Some("bytes=0-"), 0), Ranges::NoOverlap);
        assert_eq!(parse(Some("bytes=-0"), 10), Ranges::NoOverlap);
        assert_eq!(parse(Some("bytes=5-2"), 10), Ranges::Invalid);
        assert_eq!(parse(Some("bytes=x-2"), 10), Ranges::Invalid);
        assert_eq!(parse(Some("bytes=--2"), 10), Ranges::Invalid);
        assert_eq!(parse(Some("bytes=1"), 10), Ranges::Invalid);
        assert_eq!(parse(Some("items=0-1"), 10), Ranges::Invalid);
        assert_eq!(
            parse(Some("bytes=18446744073709551615-"), 10),
            Ranges::Invalid
        );
        assert_eq!(parse(Some("bytes=,"), 10), Ranges::Whole);
    }

    #[test]
    fn several_ranges() {
        let s = |start, len| Span { start, len };
        assert_eq!(
            parse(Some("bytes=0-1,,3-4"), 10),
            Ranges::Many(vec![s(0, 2), s(3, 2)])
        );
        // Out of order and overlapping is allowed, as long as the total fits the file.
        assert_eq!(
            parse(Some("bytes=-2, 0-0"), 10),
            Ranges::Many(vec![s(8, 2), s(0, 1)])
        );
        // One range past the end is dropped; one left is a plain range.
        assert_eq!(parse(Some("bytes=0-1,20-30"), 10), one(0, 2));
        assert_eq!(parse(Some("bytes=20-,30-"), 10), Ranges::NoOverlap);
        // More than the file in total: the whole file.
        assert_eq!(parse(Some("bytes=0-9,0-0"), 10), Ranges::Whole);
        // A malformed range spoils the lot.
        assert_eq!(parse(Some("bytes=0-1,4-3"), 10), Ranges::Invalid);
        let many = (0..=MAX_RANGES)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse(Some(&format!("bytes={many}")), 1000), Ranges::Whole);
    }

    #[test]
    fn multipart_layout() {
        let spans = [Span { start: 0, len: 2 }, Span { start: 5, len: 1 }];
        let p = multipart(&spans, 10, "B", "application/octet-stream");
        let text: Vec<String> = p
            .iter()
            .map(|x| match x {
                Piece::Text(t) => t.clone(),
                Piece::File(s) => format!("<{}+{}>", s.start, s.len),
            })
            .collect();
        assert_eq!(
            text.concat(),
            "--B\r\nContent-Range: bytes 0-1/10\r\nContent-Type: application/octet-stream\r\n\r\n<0+2>\
             \r\n--B\r\nContent-Range: bytes 5-5/10\r\nContent-Type: application/octet-stream\r\n\r\n<5+1>\
             \r\n--B--\r\n"
        );
        assert_eq!(boundary().len(), 60);
    }
}
