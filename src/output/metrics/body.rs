//! A rendering as pieces, and its sending a slice at a time.

use bytes::Bytes;

use super::keys::{Cursor, KeyLines};

/// A rendering as pieces to send one after the other: the component
/// families, the per-key families, the user and account families. Plain
/// pieces concatenate to the exposition; gzip pieces are bytes that
/// concatenate to one gzip stream of it (see [`gzip`]).
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub parts: Vec<Piece>,
}

/// A piece of a body: bytes, or per-key lines written as they are sent.
#[derive(Debug, Clone)]
pub enum Piece {
    Bytes(Bytes),
    Lines(KeyLines),
}

impl Piece {
    pub fn len(&self) -> usize {
        match self {
            Piece::Bytes(bytes) => bytes.len(),
            Piece::Lines(lines) => lines.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Body {
    pub fn len(&self) -> usize {
        self.parts.iter().map(Piece::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A body as slices of at most about `size` bytes, in order: bytes are
/// sliced (reference-counted, not copied); per-key lines are written a
/// slice at a time, as they are asked for, so that they are never held
/// whole.
#[derive(Debug)]
pub struct Slices {
    /// The pieces still to send, last first.
    rest: Vec<Piece>,
    /// The lines being sent.
    lines: Option<Cursor>,
    left: usize,
    size: usize,
}

impl Slices {
    pub fn new(body: &Body, size: usize) -> Slices {
        Slices {
            rest: body.parts.iter().rev().filter(|p| !p.is_empty()).cloned().collect(),
            lines: None,
            left: body.len(),
            size,
        }
    }

    /// The number of bytes still to send.
    pub fn left(&self) -> usize {
        self.left
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty() && self.lines.is_none()
    }
}

impl Iterator for Slices {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let slice = loop {
            if let Some(cursor) = &mut self.lines {
                // A few lines past the size: whole lines only.
                let mut slice = Vec::with_capacity(self.size + 4096);
                if !cursor.fill(&mut slice, self.size) {
                    self.lines = None;
                }
                if !slice.is_empty() {
                    break Bytes::from(slice);
                }
                continue;
            }
            match self.rest.last_mut()? {
                Piece::Bytes(part) => {
                    let slice = part.split_to(part.len().min(self.size));
                    if part.is_empty() {
                        self.rest.pop();
                    }
                    break slice;
                }
                Piece::Lines(lines) => {
                    self.lines = Some(lines.cursor());
                    self.rest.pop();
                }
            }
        };
        self.left = self.left.saturating_sub(slice.len());
        Some(slice)
    }
}
