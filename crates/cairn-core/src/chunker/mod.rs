//! Content-defined chunking, bit-exact with restic's Rabin chunker
//! (`github.com/restic/chunker` v0.4, as used by restic 0.14).
//!
//! # The rule
//!
//! Bytes are polynomials over GF(2) (bit `k` = `x^k`). The fingerprint of a 64-byte
//! window `b0..b63` is `Σ b_j·x^(8·(63−j)) mod P` (fully reduced), i.e. `h = ((h << 8) | b)
//! mod P` over the window. Each file is chunked from byte 0. A chunk of length `L` ends
//! at the first `L ≥ MIN_SIZE` where the fingerprint of its last 64 bytes has its low 20
//! bits all zero, or at `L == MAX_SIZE`; whatever is left at the end of the input is the
//! last chunk. So empty input gives no chunks and input of at most `MIN_SIZE` bytes
//! gives exactly one.
//!
//! # How it is computed
//!
//! restic rolls a 64-byte window through every byte after the first `MIN_SIZE − 64` of
//! each chunk. Because the fingerprint at a position depends only on the 64 bytes
//! before it, this implementation instead hashes the window before the first candidate
//! position from scratch and then rolls with the outgoing byte read straight from the
//! buffer (no ring). To beat the latency of the table-lookup dependency chain, a
//! candidate range is split into 4 consecutive blocks that are rolled interleaved
//! (independent chains → instruction-level parallelism); the earliest hit wins. The result is identical to the sequential scan (tested against a literal port
//! of restic's loop and against restic's own test vectors).

mod polynomial;

#[cfg(test)]
mod gorand;

pub use polynomial::Polynomial;

use std::fmt;
use std::io::{self, Read};

/// Minimum chunk size (restic `chunker.MinSize`).
pub const MIN_SIZE: usize = 512 * 1024;
/// Maximum chunk size (restic `chunker.MaxSize`).
pub const MAX_SIZE: usize = 8 * 1024 * 1024;

/// Size of the rolling-hash window in bytes.
const WINDOW_SIZE: usize = 64;
/// A chunk boundary is where `fingerprint & SPLIT_MASK == 0` (≈ 1 MiB average spacing).
const SPLIT_MASK: u64 = (1 << 20) - 1;

/// Number of independent rolling chains interleaved by [`ChunkerTables::find_cut`]
/// (measured on Zen 4: 2 → ×1.9, 4 → ×3.1 the speed of one chain; more gains nothing,
/// the loop is then throughput-bound).
const LANES: usize = 4;
/// Positions per lane in one interleaved round. Each lane re-hashes 64 bytes per round;
/// when a lane other than the first hits, the positions before it are searched again
/// (≤ (LANES − 1)·LANE_BLOCK positions, at most once per chunk in practice).
const LANE_BLOCK: usize = 8 * 1024;
/// Below this many positions per lane, scan sequentially instead.
const MIN_LANE_BLOCK: usize = 256;

/// Largest single read a [`ChunkReader`] issues.
const READ_SIZE: usize = 1024 * 1024;
/// Initial buffer size of a [`ChunkReader`] (grows on demand, so small files stay cheap).
const INITIAL_BUF: usize = 64 * 1024;
/// Maximum buffer size of a [`ChunkReader`].
const BUF_CAP: usize = 2 * MAX_SIZE;

/// Outcome of [`ChunkerTables::scan_lanes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LaneHit {
    /// No position of the scanned range qualifies.
    None,
    /// This is the first qualifying position of the range.
    First(usize),
    /// This position qualifies, but earlier positions of the range might too.
    Some(usize),
}

/// Precomputed tables for one polynomial; cheap to share (Clone/Arc) between threads.
///
/// Digests are kept "top-aligned": a fingerprint `f` (degree < deg P) is held as
/// `f << align` with `align = 64 − deg P`, so the 8 bits that overflow when appending
/// a byte are exactly the ones a `<< 8` drops, and `D >> 56` is a table index that is
/// in bounds by construction.
#[derive(Clone)]
pub struct ChunkerTables {
    pol: Polynomial,
    /// `64 − deg(P)`.
    align: u32,
    /// `out[b] = fp(b, 0 × 63) << align`: XOR-ing it removes byte `b` from the front
    /// of the window.
    out: [u64; 256],
    /// `modt[t] = ((t·x^deg) mod P) << align`: the reduction of the byte `t` shifted
    /// out at the top.
    modt: [u64; 256],
}

impl fmt::Debug for ChunkerTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkerTables")
            .field("pol", &self.pol)
            .finish_non_exhaustive()
    }
}

impl ChunkerTables {
    /// Computes the tables for `pol`.
    ///
    /// restic only ever uses irreducible polynomials of degree 53 (the repository
    /// config is validated for that); any polynomial of degree 8..=56 gives the exact
    /// rule of the module docs. For other polynomials (which restic's chunker refuses
    /// with a panic) this does not panic but gives meaningless, if deterministic,
    /// boundaries.
    pub fn new(pol: Polynomial) -> ChunkerTables {
        let p = pol.0;
        let deg = pol.degree();
        let mut out = [0u64; 256];
        let mut modt = [0u64; 256];
        if !(8..=56).contains(&deg) {
            return ChunkerTables {
                pol,
                align: 8,
                out,
                modt,
            };
        }
        let align = 64 - deg as u32;
        let append = |h: u64, b: u8| polynomial::mod64((h << 8) | b as u64, p);
        for (b, slot) in out.iter_mut().enumerate() {
            let mut h = append(0, b as u8);
            for _ in 0..WINDOW_SIZE - 1 {
                h = append(h, 0);
            }
            *slot = h << align;
        }
        for (t, slot) in modt.iter_mut().enumerate() {
            *slot = polynomial::mod64((t as u64) << deg, p) << align;
        }
        ChunkerTables {
            pol,
            align,
            out,
            modt,
        }
    }

    /// The polynomial these tables were computed for.
    pub fn polynomial(&self) -> Polynomial {
        self.pol
    }

    /// Slides byte `b` in and byte `out` (the one 64 positions earlier) out of the
    /// aligned digest `d`.
    #[inline(always)]
    fn roll(&self, d: u64, out: u8, b: u8) -> u64 {
        let d = d ^ self.out[out as usize];
        ((d << 8) ^ ((b as u64) << self.align)) ^ self.modt[(d >> 56) as usize]
    }

    /// Aligned digest of the window `data[end − 64..end]`, from scratch.
    #[inline]
    fn fp_at(&self, data: &[u8], end: usize) -> u64 {
        let window: &[u8; WINDOW_SIZE] = data[end - WINDOW_SIZE..end].try_into().unwrap();
        // Rolling over a zero window is plain appending (out[0] == 0).
        window.iter().fold(0, |d, &b| self.roll(d, 0, b))
    }

    /// The fingerprint (restic's digest) of the window `data[end − 64..end]`.
    #[cfg(test)]
    fn fingerprint_at(&self, data: &[u8], end: usize) -> u64 {
        self.fp_at(data, end) >> self.align
    }

    /// The first position `p` in `from..=to` (`from ≥ 64`, `to ≤ data.len()`) whose
    /// window `data[p − 64..p]` has `fingerprint & mask == 0`.
    fn find_cut(&self, data: &[u8], from: usize, to: usize, mask: u64) -> Option<usize> {
        assert!(from >= WINDOW_SIZE && to <= data.len());
        if from > to {
            return None;
        }
        let m = mask << self.align;
        if self.fp_at(data, from) & m == 0 {
            return Some(from);
        }
        // Remaining positions: s..=to. scan_lanes needs s > 64, which holds now.
        let mut s = from + 1;
        while to + 1 - s >= LANES * LANE_BLOCK {
            match self.scan_lanes_full(data, s, m) {
                LaneHit::None => s += LANES * LANE_BLOCK,
                hit => return Some(self.resolve(data, s, hit, mask)),
            }
        }
        let block = (to + 1 - s) / LANES;
        if block >= MIN_LANE_BLOCK {
            match self.scan_lanes_tail(data, s, block, m) {
                LaneHit::None => s += LANES * block,
                hit => return Some(self.resolve(data, s, hit, mask)),
            }
        }
        self.scan_serial(data, s, to, mask)
    }

    /// Turns a hit of [`scan_lanes`](Self::scan_lanes) started at `s` into the first
    /// qualifying position.
    #[cold]
    fn resolve(&self, data: &[u8], s: usize, hit: LaneHit, mask: u64) -> usize {
        match hit {
            LaneHit::First(p) => p,
            // An earlier lane may still hold an earlier hit; p > s, so this terminates.
            LaneHit::Some(p) => self.find_cut(data, s, p - 1, mask).unwrap_or(p),
            LaneHit::None => unreachable!(),
        }
    }

    /// [`find_cut`](Self::find_cut) with a single rolling chain.
    fn scan_serial(&self, data: &[u8], from: usize, to: usize, mask: u64) -> Option<usize> {
        if from > to {
            return None;
        }
        let m = mask << self.align;
        let mut d = self.fp_at(data, from);
        if d & m == 0 {
            return Some(from);
        }
        // Position p = from + 1 + i takes in data[p − 1] and drops data[p − 65].
        let outs = &data[from - WINDOW_SIZE..to - WINDOW_SIZE];
        let ins = &data[from..to];
        for (i, (&o, &b)) in outs.iter().zip(ins).enumerate() {
            d = self.roll(d, o, b);
            if d & m == 0 {
                return Some(from + 1 + i);
            }
        }
        None
    }

    /// [`scan_lanes`](Self::scan_lanes) with the compile-time block size (all lane
    /// offsets become constant displacements).
    #[inline(never)]
    fn scan_lanes_full(&self, data: &[u8], s: usize, mask: u64) -> LaneHit {
        self.scan_lanes::<LANES>(data, s, LANE_BLOCK, mask)
    }

    /// [`scan_lanes`](Self::scan_lanes) with a run-time block size.
    #[inline(never)]
    fn scan_lanes_tail(&self, data: &[u8], s: usize, block: usize, mask: u64) -> LaneHit {
        self.scan_lanes::<LANES>(data, s, block, mask)
    }

    /// Scans positions `s..s + L·block` as `L` interleaved chains; lane `k` covers
    /// `s + k·block..s + (k+1)·block`. Stops at the first step where any lane hits.
    /// `mask` is aligned like the digests. Requires `s > 64`.
    #[inline(always)]
    fn scan_lanes<const L: usize>(
        &self,
        data: &[u8],
        s: usize,
        block: usize,
        mask: u64,
    ) -> LaneHit {
        // Position p takes in data[p − 1] and drops data[p − 65]. In `w` coordinates
        // (w[0] = data[s − 65]), lane k at step i takes in w[64 + k·block + i] and drops
        // w[k·block + i]; its chain starts from the fingerprint at s − 1 + k·block.
        let w = &data[s - WINDOW_SIZE - 1..s - 1 + L * block];
        let mut d = [0u64; L];
        for (k, dk) in d.iter_mut().enumerate() {
            *dk = self.fp_at(w, WINDOW_SIZE + k * block);
        }
        for i in 0..block {
            for (k, dk) in d.iter_mut().enumerate() {
                let j = k * block + i;
                *dk = self.roll(*dk, w[j], w[j + WINDOW_SIZE]);
            }
            if d[0] & mask == 0 {
                // Lane 0 precedes all others: its first hit is the answer.
                return LaneHit::First(s + i);
            }
            for (k, &dk) in d.iter().enumerate().skip(1) {
                if dk & mask == 0 {
                    return LaneHit::Some(s + k * block + i);
                }
            }
        }
        LaneHit::None
    }

    /// Length of the first chunk of `data`, given that `data` is all the input that is
    /// left or holds at least `MAX_SIZE` bytes.
    fn first_chunk_len(&self, data: &[u8], mask: u64) -> usize {
        let lim = data.len().min(MAX_SIZE);
        if lim < MIN_SIZE {
            return lim;
        }
        self.find_cut(&data[..lim], MIN_SIZE, lim, mask)
            .unwrap_or(lim)
    }

    fn chunk_lengths_masked(&self, data: &[u8], mask: u64) -> Vec<usize> {
        let mut lengths = Vec::with_capacity(data.len() / (1 << 20) + 1);
        let mut pos = 0;
        while pos < data.len() {
            let len = self.first_chunk_len(&data[pos..], mask);
            lengths.push(len);
            pos += len;
        }
        lengths
    }
}

/// Convenience: boundaries (chunk lengths) of an in-memory buffer.
pub fn chunk_lengths(tables: &ChunkerTables, data: &[u8]) -> Vec<usize> {
    tables.chunk_lengths_masked(data, SPLIT_MASK)
}

/// Streams a reader and yields chunks as owned `Vec<u8>` (each chunk buffer freshly
/// allocated with exact capacity).
///
/// Reads go into one internal buffer (at most `2 × MAX_SIZE`, grown on demand), in
/// blocks of up to 1 MiB; each chunk is copied out of it exactly once.
pub struct ChunkReader<'t, R: Read> {
    tables: &'t ChunkerTables,
    reader: R,
    buf: Vec<u8>,
    /// `buf[start..end]` is read but not yet returned; the current chunk starts at `start`.
    start: usize,
    end: usize,
    /// Chunk-relative positions `..=checked` were already tested for a boundary.
    checked: usize,
    eof: bool,
}

impl<'t, R: Read> ChunkReader<'t, R> {
    pub fn new(tables: &'t ChunkerTables, reader: R) -> Self {
        ChunkReader {
            tables,
            reader,
            buf: Vec::new(),
            start: 0,
            end: 0,
            checked: 0,
            eof: false,
        }
    }

    /// Next chunk, or None at end of input. Retries on io::ErrorKind::Interrupted.
    ///
    /// After another error the reader may be retried; no data is lost or duplicated.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let avail = self.end - self.start;
            let lim = avail.min(MAX_SIZE);
            let from = self.checked.max(MIN_SIZE - 1) + 1;
            if lim >= from {
                let data = &self.buf[self.start..self.start + lim];
                if let Some(len) = self.tables.find_cut(data, from, lim, SPLIT_MASK) {
                    return Ok(Some(self.take(len)));
                }
                self.checked = lim;
            }
            if avail >= MAX_SIZE {
                return Ok(Some(self.take(MAX_SIZE)));
            }
            if self.eof {
                return Ok((avail > 0).then(|| self.take(avail)));
            }
            self.fill()?;
        }
    }

    /// Returns the next `len` pending bytes as a chunk.
    fn take(&mut self, len: usize) -> Vec<u8> {
        let chunk = self.buf[self.start..self.start + len].to_vec();
        self.start += len;
        self.checked = 0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        chunk
    }

    /// Reads more input (up to READ_SIZE bytes, stopping early only at end of input).
    /// Only called while fewer than MAX_SIZE bytes are pending.
    fn fill(&mut self) -> io::Result<()> {
        debug_assert!(!self.eof && self.end - self.start < MAX_SIZE);
        if self.end == self.buf.len() {
            let pending = self.end - self.start;
            // Reclaim consumed space when that is cheap compared to growing, or when the
            // buffer can't grow: pending < MAX_SIZE = BUF_CAP / 2 then.
            if self.start > 0 && (self.buf.len() >= BUF_CAP || pending <= self.start) {
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = pending;
            }
            if self.end == self.buf.len() {
                let new_len = (self.buf.len() * 2).clamp(INITIAL_BUF, BUF_CAP);
                self.buf.resize(new_len, 0);
            }
        }
        let stop = self.buf.len().min(self.end + READ_SIZE);
        while self.end < stop {
            match self.reader.read(&mut self.buf[self.end..stop]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    assert!(
                        n <= stop - self.end,
                        "Read::read returned more than the buffer"
                    );
                    self.end += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Iterator for ChunkReader<'_, R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, RngCore, SeedableRng};
    use sha2::{Digest, Sha256};

    const TEST_POL: Polynomial = Polynomial(0x3DA3358B4DC173);

    fn tables() -> ChunkerTables {
        ChunkerTables::new(TEST_POL)
    }

    fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
        data
    }

    /// Slow reference: the fingerprint of a window straight from the definition,
    /// with generic polynomial reduction instead of the tables.
    fn naive_fp(pol: Polynomial, window: &[u8]) -> u64 {
        assert_eq!(window.len(), WINDOW_SIZE);
        let mut h = 0u64;
        for &b in window {
            h = polynomial::mod128(((h as u128) << 8) | b as u128, pol.0);
        }
        h
    }

    /// A literal port of restic/chunker's `Chunker` (its `fillTables`, `slide`,
    /// `updateDigest`, the `slide(1)` in `reset`, skipping `MinSize − 64` bytes),
    /// independent of [`ChunkerTables`]. Returns (length, cut fingerprint).
    fn restic_reference(pol: Polynomial, data: &[u8], mask: u64) -> Vec<(usize, u64)> {
        let p = pol.0;
        let append = |h: u64, b: u8| polynomial::mod64((h << 8) | b as u64, p);
        let mut out = [0u64; 256];
        for (b, slot) in out.iter_mut().enumerate() {
            let mut h = append(0, b as u8);
            for _ in 0..WINDOW_SIZE - 1 {
                h = append(h, 0);
            }
            *slot = h;
        }
        let k = pol.degree() as u32;
        let mut modt = [0u64; 256];
        for (b, slot) in modt.iter_mut().enumerate() {
            *slot = polynomial::mod64((b as u64) << k, p) | ((b as u64) << k);
        }
        let pol_shift = k - 8;

        struct State {
            window: [u8; WINDOW_SIZE],
            wpos: usize,
            digest: u64,
            pre: usize,
            count: usize,
        }
        let slide = |st: &mut State, b: u8| {
            let o = st.window[st.wpos];
            st.window[st.wpos] = b;
            st.wpos = (st.wpos + 1) % WINDOW_SIZE;
            let d = st.digest ^ out[o as usize];
            let index = d >> pol_shift;
            st.digest = ((d << 8) | b as u64) ^ modt[index as usize];
        };
        let reset = |st: &mut State| {
            st.window = [0; WINDOW_SIZE];
            st.wpos = 0;
            st.digest = 0;
            st.count = 0;
            slide(st, 1);
            st.pre = MIN_SIZE - WINDOW_SIZE;
        };
        let mut st = State {
            window: [0; WINDOW_SIZE],
            wpos: 0,
            digest: 0,
            pre: 0,
            count: 0,
        };
        reset(&mut st);
        let mut chunks = Vec::new();
        let mut i = 0;
        let mut chunk_start = 0;
        while i < data.len() {
            if st.pre > 0 {
                let n = st.pre.min(data.len() - i);
                st.pre -= n;
                st.count += n;
                i += n;
                continue;
            }
            slide(&mut st, data[i]);
            i += 1;
            st.count += 1;
            if (st.digest & mask == 0 || st.count >= MAX_SIZE) && st.count >= MIN_SIZE {
                chunks.push((i - chunk_start, st.digest));
                chunk_start = i;
                reset(&mut st);
            }
        }
        if chunk_start < data.len() {
            chunks.push((data.len() - chunk_start, st.digest));
        }
        chunks
    }

    /// Reader that hands out data in irregular pieces and sometimes fails with
    /// `Interrupted`.
    struct Irregular<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        calls: usize,
        interrupt_every: usize,
    }

    impl Read for Irregular<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            // (interrupt_every == 1 would never make progress.)
            if self.interrupt_every > 1 && self.calls.rem_euclid(self.interrupt_every) == 0 {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            let want = self.sizes[self.calls % self.sizes.len()].max(1);
            let n = want.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn read_all_chunks<R: Read>(t: &ChunkerTables, reader: R) -> Vec<Vec<u8>> {
        let mut r = ChunkReader::new(t, reader);
        let mut chunks = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            assert!(!c.is_empty());
            assert_eq!(c.capacity(), c.len());
            chunks.push(c);
        }
        // Stays at end.
        assert!(r.next_chunk().unwrap().is_none());
        chunks
    }

    fn lengths(chunks: &[Vec<u8>]) -> Vec<usize> {
        chunks.iter().map(Vec::len).collect()
    }

    /// Checks chunk_lengths and ChunkReader (with big and irregular reads) agree on
    /// `data`, return its lengths.
    fn check_all_ways(t: &ChunkerTables, data: &[u8]) -> Vec<usize> {
        let lens = chunk_lengths(t, data);
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        let chunks = read_all_chunks(t, data);
        assert_eq!(lengths(&chunks), lens);
        assert_eq!(chunks.concat(), data);
        lens
    }

    #[test]
    fn empty_input_has_no_chunks() {
        let t = tables();
        assert!(chunk_lengths(&t, &[]).is_empty());
        assert!(read_all_chunks(&t, &[][..]).is_empty());
    }

    #[test]
    fn small_input_is_one_chunk() {
        let t = tables();
        for len in [1, 63, 64, 65, 1000, MIN_SIZE - 1, MIN_SIZE] {
            let data = random_bytes(len as u64, len);
            assert_eq!(check_all_ways(&t, &data), vec![len]);
            assert_eq!(check_all_ways(&t, &vec![0u8; len]), vec![len]);
        }
    }

    #[test]
    fn zero_runs_cut_at_min_size() {
        let t = tables();
        assert_eq!(naive_fp(TEST_POL, &[0; 64]), 0);
        let m = MIN_SIZE;
        assert_eq!(check_all_ways(&t, &vec![0u8; 3 << 20]), vec![m; 6]);
        assert_eq!(
            check_all_ways(&t, &vec![0u8; (3 << 20) + 1000]),
            vec![m, m, m, m, m, m, 1000]
        );
        assert_eq!(check_all_ways(&t, &vec![0u8; m + 1]), vec![m, 1]);
        assert_eq!(check_all_ways(&t, &vec![0u8; 2 * m - 1]), vec![m, m - 1]);

        // Random data followed by zeros: the cut comes once 64 zeros precede it,
        // unless the random part already had one.
        let mut data = random_bytes(5, 700_000);
        data.resize(3_000_000, 0);
        let lens = check_all_ways(&t, &data);
        let first = t.first_chunk_len(&data, SPLIT_MASK);
        assert!(first <= 700_064, "{lens:?}");
        assert_eq!(lens[0], first);
    }

    /// restic/chunker `chunks2`: zeros, length a multiple of MinSize.
    #[test]
    fn restic_zero_vector() {
        let t = tables();
        let data = vec![0u8; 4 * MIN_SIZE];
        let chunks = read_all_chunks(&t, &data[..]);
        assert_eq!(lengths(&chunks), vec![MIN_SIZE; 4]);
        for c in &chunks {
            assert_eq!(
                hex::encode(Sha256::digest(c)),
                "07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541"
            );
        }
    }

    #[test]
    fn max_size_cut() {
        let t = tables();
        // A byte whose constant windows never qualify as a boundary.
        let v = (1..=255u8)
            .find(|&v| naive_fp(TEST_POL, &[v; 64]) & SPLIT_MASK != 0)
            .unwrap();
        let data = vec![v; 2 * MAX_SIZE + 4 * MIN_SIZE + 7];
        assert_eq!(
            check_all_ways(&t, &data),
            vec![MAX_SIZE, MAX_SIZE, 4 * MIN_SIZE + 7]
        );
        // Zeros after the max-size chunk are again cut at MinSize.
        let mut data = vec![v; MAX_SIZE + 100];
        data.resize(MAX_SIZE + 2 * MIN_SIZE + 5, 0);
        assert_eq!(
            check_all_ways(&t, &data),
            vec![MAX_SIZE, MIN_SIZE, MIN_SIZE, 5]
        );
    }

    /// restic/chunker `chunks1` and `chunks3`: 32 MiB from Go's math/rand seeded
    /// with 23, polynomial 0x3DA3358B4DC173, average bits 20 and 19.
    #[test]
    fn restic_test_vectors() {
        #[rustfmt::skip]
        let chunks1: &[(usize, u64, &str)] = &[
            (2163460, 0x000b98d4cdf00000, "4b94cb2cf293855ea43bf766731c74969b91aa6bf3c078719aabdd19860d590d"),
            (643703, 0x000d4e8364d00000, "5727a63c0964f365ab8ed2ccf604912f2ea7be29759a2b53ede4d6841e397407"),
            (1528956, 0x0015a25c2ef00000, "a73759636a1e7a2758767791c69e81b69fb49236c6929e5d1b654e06e37674ba"),
            (1955808, 0x00102a8242e00000, "c955fb059409b25f07e5ae09defbbc2aadf117c97a3724e06ad4abd2787e6824"),
            (2222372, 0x00045da878000000, "6ba5e9f7e1b310722be3627716cf469be941f7f3e39a4c3bcefea492ec31ee56"),
            (2538687, 0x00198a8179900000, "8687937412f654b5cfe4a82b08f28393a0c040f77c6f95e26742c2fc4254bfde"),
            (609606, 0x001d4e8d17100000, "5da820742ff5feb3369112938d3095785487456f65a8efc4b96dac4be7ebb259"),
            (1205738, 0x000a7204dd600000, "cc70d8fad5472beb031b1aca356bcab86c7368f40faa24fe5f8922c6c268c299"),
            (959742, 0x00183e71e1400000, "4065bdd778f95676c92b38ac265d361f81bff17d76e5d9452cf985a2ea5a4e39"),
            (4036109, 0x001fec043c700000, "b9cf166e75200eb4993fc9b6e22300a6790c75e6b0fc8f3f29b68a752d42f275"),
            (1525894, 0x000b1574b1500000, "2f238180e4ca1f7520a05f3d6059233926341090f9236ce677690c1823eccab3"),
            (1352720, 0x00018965f2e00000, "afd12f13286a3901430de816e62b85cc62468c059295ce5888b76b3af9028d84"),
            (811884, 0x00155628aa100000, "42d0cdb1ee7c48e552705d18e061abb70ae7957027db8ae8db37ec756472a70a"),
            (1282314, 0x001909a0a1400000, "819721c2457426eb4f4c7565050c44c32076a56fa9b4515a1c7796441730eb58"),
            (1318021, 0x001cceb980000000, "842eb53543db55bacac5e25cb91e43cc2e310fe5f9acc1aee86bdf5e91389374"),
            (948640, 0x0011f7a470a00000, "b8e36bf7019bb96ac3fb7867659d2167d9d3b3148c09fe0de45850b8fe577185"),
            (645464, 0x00030ce2d9400000, "5584bd27982191c3329f01ed846bfd266e96548dfa87018f745c33cfc240211d"),
            (533758, 0x0004435c53c00000, "4da778a25b72a9a0d53529eccfe2e5865a789116cb1800f470d8df685a8ab05d"),
            (1128303, 0x0000c48517800000, "08c6b0b38095b348d80300f0be4c5184d2744a17147c2cba5cc4315abf4c048f"),
            (800374, 0x000968473f900000, "820284d2c8fd243429674c996d8eb8d3450cbc32421f43113e980f516282c7bf"),
            (2453512, 0x001e197c92600000, "5fa870ed107c67704258e5e50abe67509fb73562caf77caa843b5f243425d853"),
            (2651975, 0x000ae6c868000000, "181347d2bbec32bef77ad5e9001e6af80f6abcf3576549384d334ee00c1988d8"),
            (237392, 0x0000000000000001, "fcd567f5d866357a8e299fd5b2359bb2c8157c30395229c4e9b0a353944a7978"),
        ];
        #[rustfmt::skip]
        let chunks3: &[(usize, u64, &str)] = &[
            (1491586, 0x00023e586ea80000, "4c008237df602048039287427171cef568a6cb965d1b5ca28dc80504a24bb061"),
            (671874, 0x000b98d4cdf00000, "fa8a42321b90c3d4ce9dd850562b2fd0c0fe4bdd26cf01a24f22046a224225d3"),
            (643703, 0x000d4e8364d00000, "5727a63c0964f365ab8ed2ccf604912f2ea7be29759a2b53ede4d6841e397407"),
            (1284146, 0x0012b527e4780000, "16d04cafecbeae9eaedd49da14c7ad7cdc2b1cc8569e5c16c32c9fb045aa899a"),
            (823366, 0x000d1d6752180000, "48662c118514817825ad4761e8e2e5f28f9bd8281b07e95dcafc6d02e0aa45c3"),
            (810134, 0x0016071b6e180000, "f629581aa05562f97f2c359890734c8574c5575da32f9289c5ba70bfd05f3f46"),
            (567118, 0x00102a8242e00000, "d4f0797c56c60d01bac33bfd49957a4816b6c067fc155b026de8a214cab4d70a"),
            (821315, 0x001b3e42c8180000, "8ebd0fd5db0293bd19140da936eb8b1bbd3cd6ffbec487385b956790014751ca"),
            (1401057, 0x00045da878000000, "001360af59adf4871ef138cfa2bb49007e86edaf5ac2d6f0b3d3014510991848"),
            (2311122, 0x0005cbd885380000, "8276d489b566086d9da95dc5c5fe6fc7d72646dd3308ced6b5b6ddb8595f0aa1"),
            (608723, 0x001cfcd86f280000, "518db33ba6a79d4f3720946f3785c05b9611082586d47ea58390fc2f6de9449e"),
            (980456, 0x0013edb7a7f80000, "0121b1690738395e15fecba1410cd0bf13fde02225160cad148829f77e7b6c99"),
            (1140278, 0x0001f9f017e80000, "28ca7c74804b5075d4f5eeb11f0845d99f62e8ea3a42b9a05c7bd5f2fca619dd"),
            (2015542, 0x00097bf5d8180000, "6fe8291f427d48650a5f0f944305d3a2dbc649bd401d2655fc0bdd42e890ca5a"),
            (904752, 0x000e1863eff80000, "62af1f1eb3f588d18aff28473303cc4731fc3cafcc52ce818fee3c4c2820854d"),
            (713072, 0x001f3bb1b9b80000, "4bda9dc2e3031d004d87a5cc93fe5207c4b0843186481b8f31597dc6ffa1496c"),
            (675937, 0x001fec043c700000, "5299c8c5acec1b90bb020cd75718aab5e12abb9bf66291465fd10e6a823a8b4a"),
            (1525894, 0x000b1574b1500000, "2f238180e4ca1f7520a05f3d6059233926341090f9236ce677690c1823eccab3"),
            (1352720, 0x00018965f2e00000, "afd12f13286a3901430de816e62b85cc62468c059295ce5888b76b3af9028d84"),
            (811884, 0x00155628aa100000, "42d0cdb1ee7c48e552705d18e061abb70ae7957027db8ae8db37ec756472a70a"),
            (1282314, 0x001909a0a1400000, "819721c2457426eb4f4c7565050c44c32076a56fa9b4515a1c7796441730eb58"),
            (1093738, 0x0017f5d048880000, "5dddfa7a241b68f65d267744bdb082ee865f3c2f0d8b946ea0ee47868a01bbff"),
            (962003, 0x000b921f7ef80000, "0cb5c9ebba196b441c715c8d805f6e7143a81cd5b0d2c65c6aacf59ca9124af9"),
            (856384, 0x00030ce2d9400000, "7734b206d46f3f387e8661e81edf5b1a91ea681867beb5831c18aaa86632d7fb"),
            (533758, 0x0004435c53c00000, "4da778a25b72a9a0d53529eccfe2e5865a789116cb1800f470d8df685a8ab05d"),
            (1128303, 0x0000c48517800000, "08c6b0b38095b348d80300f0be4c5184d2744a17147c2cba5cc4315abf4c048f"),
            (800374, 0x000968473f900000, "820284d2c8fd243429674c996d8eb8d3450cbc32421f43113e980f516282c7bf"),
            (2453512, 0x001e197c92600000, "5fa870ed107c67704258e5e50abe67509fb73562caf77caa843b5f243425d853"),
            (665901, 0x00118c842cb80000, "deceec26163842fdef6560311c69bf8a9871a56e16d719e2c4b7e4d668ceb61f"),
            (1986074, 0x000ae6c868000000, "64cd64bf3c3bc389eb20df8310f0427d1c36ab2eaaf09e346bfa7f0453fc1a18"),
            (237392, 0x0000000000000001, "fcd567f5d866357a8e299fd5b2359bb2c8157c30395229c4e9b0a353944a7978"),
        ];

        let t = tables();
        let data = gorand::get_random(23, 32 * 1024 * 1024);
        for (mask, expected) in [((1u64 << 20) - 1, chunks1), ((1 << 19) - 1, chunks3)] {
            let lens = t.chunk_lengths_masked(&data, mask);
            let want: Vec<usize> = expected.iter().map(|c| c.0).collect();
            assert_eq!(lens, want, "mask {mask:#x}");
            let mut pos = 0;
            for (i, (&len, &(_, cut, digest))) in lens.iter().zip(expected).enumerate() {
                let chunk = &data[pos..pos + len];
                assert_eq!(hex::encode(Sha256::digest(chunk)), digest, "chunk {i}");
                if i + 1 < lens.len() {
                    // restic's "Cut" is the fingerprint at the boundary.
                    assert_eq!(t.fingerprint_at(chunk, len), cut, "chunk {i}");
                    assert_eq!(naive_fp(TEST_POL, &chunk[len - 64..]), cut, "chunk {i}");
                }
                pos += len;
            }
            let reference = restic_reference(TEST_POL, &data, mask);
            assert_eq!(reference.iter().map(|c| c.0).collect::<Vec<_>>(), want);
            for (r, e) in reference.iter().zip(expected) {
                assert_eq!(r.1, e.1);
            }
        }
        let chunks = read_all_chunks(&t, &data[..]);
        assert_eq!(lengths(&chunks), t.chunk_lengths_masked(&data, SPLIT_MASK));
    }

    /// The rolling form equals the from-scratch definition at arbitrary positions, and
    /// the lane-parallel search finds exactly the first qualifying position.
    #[test]
    fn rolling_matches_naive_fingerprint() {
        let t = tables();
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let mut data = random_bytes(3, 300_000);
        data[100_000..120_000].fill(0);
        data[200_000..200_100].fill(0xff);
        for _ in 0..300 {
            let end = rng.gen_range(64..=data.len());
            assert_eq!(
                t.fingerprint_at(&data, end),
                naive_fp(TEST_POL, &data[end - 64..end])
            );
        }
        // Every rolled fingerprint of a long stretch matches the naive one.
        let mut d = t.fp_at(&data, 64);
        for p in 65..20_000 {
            d = t.roll(d, data[p - 65], data[p - 1]);
            assert_eq!(
                d >> t.align,
                naive_fp(TEST_POL, &data[p - 64..p]),
                "position {p}"
            );
        }
        // find_cut vs. a naive linear search, with masks that make hits frequent
        // enough to hit every lane and block edge case.
        let fps: Vec<u64> = (0..=data.len())
            .map(|p| {
                if p < 64 {
                    1
                } else {
                    t.fingerprint_at(&data, p)
                }
            })
            .collect();
        for bits in [4u32, 8, 12, 16] {
            let mask = (1u64 << bits) - 1;
            for _ in 0..200 {
                let from = rng.gen_range(64..data.len());
                let span = if rng.gen_bool(0.5) {
                    1 << bits
                } else {
                    1 << (bits + 3)
                };
                let to = (from + rng.gen_range(0..span)).min(data.len());
                let want = (from..=to).find(|&p| fps[p] & mask == 0);
                assert_eq!(t.find_cut(&data, from, to, mask), want, "{from}..={to}");
                assert_eq!(t.scan_serial(&data, from, to, mask), want);
            }
            let all: Vec<usize> = (64..=data.len()).filter(|&p| fps[p] & mask == 0).collect();
            for (i, &p) in all.iter().enumerate().take(200) {
                let next = all.get(i + 1).copied();
                assert_eq!(t.find_cut(&data, p, data.len(), mask), Some(p));
                assert_eq!(t.find_cut(&data, p + 1, data.len(), mask), next);
            }
        }
    }

    #[test]
    fn reader_propagates_errors_and_resumes() {
        struct Flaky<'a> {
            data: &'a [u8],
            calls: usize,
        }
        impl Read for Flaky<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.calls += 1;
                if self.calls.rem_euclid(3) == 0 {
                    return Err(io::Error::other("boom"));
                }
                let n = buf.len().min(self.data.len()).min(300_000);
                buf[..n].copy_from_slice(&self.data[..n]);
                self.data = &self.data[n..];
                Ok(n)
            }
        }
        let t = tables();
        let data = random_bytes(8, 5_000_000);
        let mut r = ChunkReader::new(
            &t,
            Flaky {
                data: &data,
                calls: 0,
            },
        );
        let mut chunks = Vec::new();
        let mut errors = 0;
        loop {
            match r.next_chunk() {
                Ok(Some(c)) => chunks.push(c),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.to_string(), "boom");
                    errors += 1;
                }
            }
        }
        assert!(errors > 0);
        assert_eq!(chunks.concat(), data);
        assert_eq!(lengths(&chunks), chunk_lengths(&t, &data));
    }

    /// Polynomials restic can't use must not panic (a config may hold anything that
    /// passes validation, e.g. a tiny irreducible polynomial).
    #[test]
    fn degenerate_polynomials_do_not_panic() {
        let data = build_input(4, 3_000_000);
        for p in [0u64, 1, 2, 3, 0x83, 0x1ff, 1 << 57 | 1, u64::MAX] {
            let t = ChunkerTables::new(Polynomial(p));
            let lens = check_all_ways(&t, &data);
            let (_, init) = lens.split_last().unwrap();
            assert!(init.iter().all(|l| (MIN_SIZE..=MAX_SIZE).contains(l)));
        }
        // Degree 8..=56 is exact: compare with the definition for a degree-8 and a
        // degree-56 polynomial.
        let window = random_bytes(6, 64);
        for p in [0x11bu64, (1 << 56) | 0x95] {
            let t = ChunkerTables::new(Polynomial(p));
            assert_eq!(
                t.fingerprint_at(&window, 64),
                naive_fp(Polynomial(p), &window)
            );
        }
    }

    #[test]
    fn tables_are_shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<ChunkerTables>();
        let t = std::sync::Arc::new(tables());
        let data = random_bytes(11, 3_000_000);
        let want = chunk_lengths(&t, &data);
        let handle = {
            let t = t.clone();
            let data = data.clone();
            std::thread::spawn(move || chunk_lengths(&t, &data))
        };
        assert_eq!(handle.join().unwrap(), want);
        assert_eq!(t.polynomial(), TEST_POL);
        assert!(format!("{:?}", t).contains("ChunkerTables"));
    }

    /// Test input: a mix of random, zero, constant and repeated (shifted) segments.
    fn build_input(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            let seg = rng.gen_range(1..=1_500_000).min(len - data.len());
            match rng.gen_range(0..6) {
                0 => data.resize(data.len() + seg, 0),
                1 => {
                    let v = rng.gen();
                    data.resize(data.len() + seg, v)
                }
                2 if !data.is_empty() => {
                    let from = rng.gen_range(0..data.len());
                    let n = seg.min(data.len() - from);
                    data.extend_from_within(from..from + n);
                }
                _ => {
                    let old = data.len();
                    data.resize(old + seg, 0);
                    rng.fill_bytes(&mut data[old..]);
                }
            }
        }
        data
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        #[test]
        fn chunking_invariants(
            seed in any::<u64>(),
            len in prop_oneof![0usize..2_000_000, 2_000_000usize..6_000_000],
            sizes in prop::collection::vec(prop_oneof![1usize..100, 100usize..70_000, 70_000usize..3_000_000], 1..8),
            interrupt_every in prop_oneof![Just(0usize), 2usize..6],
        ) {
            let t = tables();
            let data = build_input(seed, len);
            let lens = chunk_lengths(&t, &data);
            prop_assert_eq!(lens.iter().sum::<usize>(), data.len());
            if let Some((_, init)) = lens.split_last() {
                for &l in init {
                    prop_assert!((MIN_SIZE..=MAX_SIZE).contains(&l));
                }
            }
            prop_assert!(lens.iter().all(|&l| (1..=MAX_SIZE).contains(&l)));
            // Boundaries are where the definition says.
            let mut pos = 0;
            for &l in &lens[..lens.len().saturating_sub(1)] {
                let fp = naive_fp(TEST_POL, &data[pos + l - 64..pos + l]);
                prop_assert!(fp & SPLIT_MASK == 0 || l == MAX_SIZE);
                pos += l;
            }
            // Same as restic's own loop.
            let reference: Vec<usize> =
                restic_reference(TEST_POL, &data, SPLIT_MASK).iter().map(|c| c.0).collect();
            prop_assert_eq!(&reference, &lens);
            // Streaming with irregular reads gives the same chunks.
            let reader = Irregular { data: &data, sizes, calls: 0, interrupt_every };
            let chunks = read_all_chunks(&t, reader);
            prop_assert_eq!(lengths(&chunks), lens);
            prop_assert!(chunks.concat() == data);
        }
    }

    /// `cargo test --release -p cairn-core chunker::tests::throughput -- --ignored --nocapture`
    ///
    /// Best of several runs, by wall clock and by this thread's CPU time (the latter is
    /// immune to being descheduled on a busy machine).
    #[test]
    #[ignore]
    fn throughput() {
        fn cpu_now() -> f64 {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid pointer to a timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
        }
        fn bench(name: &str, bytes: usize, mut f: impl FnMut()) {
            let (mut wall, mut cpu) = (f64::MAX, f64::MAX);
            for _ in 0..5 {
                let (w0, c0) = (std::time::Instant::now(), cpu_now());
                f();
                wall = wall.min(w0.elapsed().as_secs_f64());
                cpu = cpu.min(cpu_now() - c0);
            }
            let mb = bytes as f64 / 1e6;
            println!(
                "{name:<28} {:>6.0} MB/s wall, {:>6.0} MB/s cpu",
                mb / wall,
                mb / cpu
            );
        }
        let t = tables();
        let data = random_bytes(1, 256 << 20);
        let lens = chunk_lengths(&t, &data);
        println!(
            "{} chunks, mean {} bytes",
            lens.len(),
            data.len() / lens.len()
        );
        bench("chunk_lengths", data.len(), || {
            assert_eq!(chunk_lengths(&t, &data).len(), lens.len());
        });
        bench("ChunkReader (incl. copies)", data.len(), || {
            let mut r = ChunkReader::new(&t, &data[..]);
            let mut n = 0;
            while let Some(c) = r.next_chunk().unwrap() {
                n += c.len();
            }
            assert_eq!(n, data.len());
        });
        // Only the rolling part; this mask makes a hit practically impossible.
        let never = u64::MAX >> 1;
        let range = 64 << 20;
        bench("rolling only, lanes", range, || {
            assert_eq!(t.find_cut(&data, 64, range, never), None);
        });
        bench("rolling only, serial", range, || {
            assert_eq!(t.scan_serial(&data, 64, range, never), None);
        });
    }
}
