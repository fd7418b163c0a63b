//! One gzip stream assembled from parts compressed apart: each part is raw
//! deflate ended by a sync flush (byte-aligned, not final), so parts kept
//! from an earlier scrape and parts compressed now, on several cores, join
//! into one deflate stream, as zlib's gzjoin and pigz do. The stream is one
//! gzip member (RFC 1952), whose CRC-32 is combined from the parts', so any
//! gzip reader reads it whole, not only those that read several members.

use bytes::Bytes;

/// A part of a body: plain text, or raw deflate blocks, none final, with
/// the CRC-32 and length of the text they hold.
#[derive(Debug, Clone)]
pub(super) struct Deflated {
    pub(super) data: Bytes,
    /// `None` for plain text.
    crc: Option<crc32fast::Hasher>,
}

impl Deflated {
    pub(super) fn plain(text: Vec<u8>) -> Deflated {
        Deflated {
            data: text.into(),
            crc: None,
        }
    }
}

/// The fastest level: scrapes are frequent and the text compresses about
/// thirty times even so.
pub(super) fn deflate(plain: &[u8]) -> Deflated {
    let mut compress = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = Vec::with_capacity(plain.len() / 20 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        compress
            .compress_vec(&plain[consumed..], &mut out, flate2::FlushCompress::Sync)
            .expect("deflate into memory");
        // Done when all is consumed and the flush fitted (room was left).
        if compress.total_in() as usize == plain.len() && out.capacity() - out.len() >= 64 {
            break;
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(plain);
    Deflated {
        data: out.into(),
        crc: Some(crc),
    }
}

/// Text deflated as it is written, a slice at a time: a part kept deflated
/// is never held whole as text (at 100,000 keys, tens of MB less at peak).
pub(super) struct DeflateWriter {
    compress: flate2::Compress,
    pending: String,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
}

const SLICE: usize = 256 * 1024;

impl DeflateWriter {
    pub(super) fn new() -> DeflateWriter {
        DeflateWriter {
            compress: flate2::Compress::new(flate2::Compression::fast(), false),
            pending: String::with_capacity(SLICE + 4096),
            out: Vec::new(),
            crc: crc32fast::Hasher::new(),
        }
    }

    fn deflate_pending(&mut self, flush: flate2::FlushCompress) {
        self.crc.update(self.pending.as_bytes());
        let input = self.pending.as_bytes();
        let start = self.compress.total_in();
        loop {
            if self.out.capacity() - self.out.len() < 64 {
                self.out.reserve(self.out.capacity().max(64 * 1024));
            }
            let consumed = (self.compress.total_in() - start) as usize;
            self.compress
                .compress_vec(&input[consumed..], &mut self.out, flush)
                .expect("deflate into memory");
            // Done when all is consumed and the output had room left (so a
            // flush is complete).
            if (self.compress.total_in() - start) as usize == input.len() && self.out.capacity() - self.out.len() >= 64
            {
                break;
            }
        }
        self.pending.clear();
    }

    pub(super) fn finish(mut self) -> Deflated {
        self.deflate_pending(flate2::FlushCompress::Sync);
        Deflated {
            data: self.out.into(),
            crc: Some(self.crc),
        }
    }
}

impl std::fmt::Write for DeflateWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.pending.push_str(s);
        if self.pending.len() >= SLICE {
            self.deflate_pending(flate2::FlushCompress::None);
        }
        Ok(())
    }
}

/// `plain` deflated as one part per core, cut at line ends: the ages are
/// compressed at every scrape, and at 100,000 keys one core would take most
/// of the scrape doing it.
pub(super) fn deflate_parallel(plain: &[u8]) -> Vec<Deflated> {
    const MIN_SLICE: usize = 1 << 20;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slices = (plain.len() / MIN_SLICE).clamp(1, threads);
    if slices == 1 {
        return vec![deflate(plain)];
    }
    let mut bounds = vec![0];
    for i in 1..slices {
        let at = plain.len() * i / slices;
        let end = plain[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(plain.len(), |p| at + p + 1);
        bounds.push(end.max(*bounds.last().expect("starts with 0")));
    }
    bounds.push(plain.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let slice = &plain[w[0]..w[1]];
                scope.spawn(move || deflate(slice))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("deflate into memory does not panic"))
            .collect()
    })
}

/// The gzip header, no name, no time, OS unknown.
pub(super) const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The end of the stream after `parts`: an empty final block (fixed
/// Huffman: `03 00`), then the CRC-32 and length of all the text.
pub(super) fn trailer<'a>(parts: impl IntoIterator<Item = &'a Deflated>) -> Bytes {
    let mut crc = crc32fast::Hasher::new();
    for part in parts {
        crc.combine(part.crc.as_ref().expect("a deflated part"));
    }
    let len = crc.total_len();
    let mut out = Vec::with_capacity(10);
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE: the length modulo 2^32.
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.into()
}

/// A whole gzip stream of `plain`, for whoever wants one in one piece.
pub fn compress(plain: &[u8]) -> Vec<u8> {
    let part = deflate(plain);
    let mut out = HEADER.to_vec();
    out.extend_from_slice(&part.data);
    out.extend_from_slice(&trailer([&part]));
    out
}
