//! One gzip stream assembled from parts compressed apart: each part is raw
//! deflate ended by a sync flush (byte-aligned, not final), so parts kept
//! from an earlier scrape and parts compressed now, on several cores, join
//! into one deflate stream, as zlib's gzjoin and pigz do. The stream is one
//! gzip member (RFC 1952), whose CRC-32 is combined from the parts', so any
//! gzip reader reads it whole, not only those that read several members.

use bytes::Bytes;

/// A part of a body: raw deflate blocks, none final, with the CRC-32 and
/// length of the text they hold.
#[derive(Debug, Clone)]
pub(super) struct Deflated {
    pub(super) data: Bytes,
    crc: crc32fast::Hasher,
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
    Deflated { data: out.into(), crc }
}

/// Text deflated as it is written, a slice at a time: a part kept deflated
/// is never held whole as text (at 100,000 keys, tens of MB less at peak).
pub(super) struct DeflateWriter {
    compress: flate2::Compress,
    pending: Vec<u8>,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// Text deflated at a time.
pub(super) const SLICE: usize = 256 * 1024;

impl DeflateWriter {
    pub(super) fn new() -> DeflateWriter {
        DeflateWriter {
            compress: flate2::Compress::new(flate2::Compression::fast(), false),
            pending: Vec::with_capacity(SLICE + 4096),
            out: Vec::new(),
            crc: crc32fast::Hasher::new(),
        }
    }

    fn deflate_pending(&mut self, flush: flate2::FlushCompress) {
        self.crc.update(&self.pending);
        let input = &self.pending[..];
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
            crc: self.crc,
        }
    }
}

impl DeflateWriter {
    /// Lets `write` append text straight to what is still to deflate (no
    /// copy in between), then deflates a slice once one has gathered.
    pub(super) fn append<T>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> T) -> T {
        let result = write(&mut self.pending);
        if self.pending.len() >= SLICE {
            self.deflate_pending(flate2::FlushCompress::None);
        }
        result
    }
}

impl std::fmt::Write for DeflateWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.append(|pending| pending.extend_from_slice(s.as_bytes()));
        Ok(())
    }
}

/// The gzip header, no name, no time, OS unknown.
pub(super) const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The end of the stream after `parts`: an empty final block (fixed
/// Huffman: `03 00`), then the CRC-32 and length of all the text.
pub(super) fn trailer<'a>(parts: impl IntoIterator<Item = &'a Deflated>) -> Bytes {
    let mut crc = crc32fast::Hasher::new();
    for part in parts {
        crc.combine(&part.crc);
    }
    let len = crc.total_len();
    let mut out = Vec::with_capacity(10);
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE: the length modulo 2^32.
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.into()
}

/// A whole gzip stream of `plain` in one piece, as the tests decode it.
#[cfg(test)]
pub fn compress(plain: &[u8]) -> Vec<u8> {
    let part = deflate(plain);
    let mut out = HEADER.to_vec();
    out.extend_from_slice(&part.data);
    out.extend_from_slice(&trailer([&part]));
    out
}
