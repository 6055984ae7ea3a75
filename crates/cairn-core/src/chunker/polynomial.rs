//! Polynomials over GF(2) as used by restic's Rabin fingerprints
//! (port of `github.com/restic/chunker` `polynomials.go`).
//!
//! A [`Polynomial`] is stored in a `u64`; bit `k` is the coefficient of `x^k`.

use std::fmt;

use anyhow::Context;

/// How many random candidates [`Polynomial::random_from`] tries before giving up
/// (restic's `randPolMaxTries`).
const RANDOM_MAX_TRIES: usize = 1_000_000;

/// A polynomial over GF(2) of degree < 64; bit `k` is the coefficient of `x^k`.
///
/// restic stores the chunker polynomial of a repository (always an irreducible
/// polynomial of degree 53) in the repository config as lowercase hex without
/// prefix or padding, see [`Polynomial::to_hex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Polynomial(pub u64);

impl Polynomial {
    /// A new random irreducible polynomial of degree 53, drawn from the operating
    /// system's CSPRNG (like restic's `chunker.RandomPolynomial`).
    pub fn random() -> crate::Result<Polynomial> {
        Polynomial::random_from(&mut rand::rngs::OsRng)
    }

    /// A random irreducible polynomial of degree 53 derived from `rng`, exactly like
    /// restic's `chunker.DerivePolynomial`: each candidate is 8 bytes read as a
    /// little-endian `u64`, masked to bits 0..=53, with bits 53 and 0 set.
    pub fn random_from<R: rand::RngCore>(rng: &mut R) -> crate::Result<Polynomial> {
        for _ in 0..RANDOM_MAX_TRIES {
            let mut bytes = [0u8; 8];
            rng.try_fill_bytes(&mut bytes)
                .context("reading random bytes for the chunker polynomial")?;
            let f = Polynomial((u64::from_le_bytes(bytes) & ((1 << 54) - 1)) | (1 << 53) | 1);
            if f.is_irreducible() {
                return Ok(f);
            }
        }
        crate::error::bail!(
            "unable to find a random irreducible polynomial in {RANDOM_MAX_TRIES} tries"
        )
    }

    /// The degree, or -1 for the zero polynomial.
    pub fn degree(self) -> i32 {
        deg64(self.0)
    }

    /// Whether the polynomial is irreducible over GF(2) (Ben-Or's test: for
    /// `i = 1..=deg/2`, `gcd(f, x^(2^i) - x mod f) == 1`).
    ///
    /// Constants (degree ≤ 0) are not irreducible. (restic's `Irreducible` reports
    /// `true` for 0 and 1; that only matters for hand-made configs, which restic
    /// would also be unable to chunk with.)
    pub fn is_irreducible(self) -> bool {
        let f = self.0;
        let deg = self.degree();
        if deg < 1 {
            return false;
        }
        // x mod f; equals x for deg ≥ 2, and the loop is empty for deg == 1.
        let x = mod64(2, f);
        let mut x_pow = x; // x^(2^i) mod f
        for _ in 1..=deg / 2 {
            x_pow = mul_mod(x_pow, x_pow, f);
            if gcd(f, x_pow ^ x) != 1 {
                return false;
            }
        }
        true
    }

    /// Lowercase hex without `0x` and without zero padding, as restic writes the
    /// `chunker_polynomial` field of the repository config (e.g. `"25b468838dcb75"`).
    pub fn to_hex(self) -> String {
        format!("{:x}", self.0)
    }

    /// Parses the [`to_hex`](Polynomial::to_hex) form: 1 to 16 hex digits (either
    /// case, leading zeros allowed), nothing else — no sign, prefix or whitespace,
    /// matching Go's `strconv.ParseUint(s, 16, 64)` used by restic.
    pub fn from_hex(s: &str) -> crate::Result<Polynomial> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            crate::error::bail!("invalid polynomial {s:?}: expected hex digits");
        }
        let v = u64::from_str_radix(s, 16)
            .with_context(|| format!("invalid polynomial {s:?}: does not fit in 64 bits"))?;
        Ok(Polynomial(v))
    }
}

impl fmt::LowerHex for Polynomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// Degree of a `u64` polynomial, -1 for zero.
#[inline]
pub(crate) fn deg64(x: u64) -> i32 {
    63 - x.leading_zeros() as i32
}

#[inline]
fn deg128(x: u128) -> i32 {
    127 - x.leading_zeros() as i32
}

/// Carry-less (GF(2)) product of two 64-bit polynomials.
pub(crate) fn clmul(a: u64, b: u64) -> u128 {
    let a = a as u128;
    let mut b = b;
    let mut r = 0u128;
    while b != 0 {
        let i = b.trailing_zeros();
        r ^= a << i;
        b &= b - 1;
    }
    r
}

/// `x mod m` for a 128-bit polynomial `x`. Panics if `m` is zero.
pub(crate) fn mod128(mut x: u128, m: u64) -> u64 {
    assert!(m != 0, "polynomial division by zero");
    let dm = deg64(m);
    let m = m as u128;
    loop {
        let dx = deg128(x);
        if dx < dm {
            return x as u64;
        }
        x ^= m << (dx - dm);
    }
}

/// `x mod m`. Panics if `m` is zero.
pub(crate) fn mod64(x: u64, m: u64) -> u64 {
    mod128(x as u128, m)
}

/// `a·b mod m`.
pub(crate) fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    mod128(clmul(a, b), m)
}

/// Greatest common divisor of two polynomials (gcd(a, 0) = a).
pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = mod64(a, b);
        a = b;
        b = r;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    /// restic/chunker `polynomials_test.go` `polIrredTests`.
    const IRRED_TESTS: &[(u64, bool)] = &[
        (0x38f1e565e288df, false),
        (0x3DA3358B4DC173, true),
        (0x30a8295b9d5c91, false),
        (0x255f4350b962cb, false),
        (0x267f776110a235, false),
        (0x2f4dae10d41227, false),
        (0x2482734cacca49, true),
        (0x312daf4b284899, false),
        (0x29dfb6553d01d1, false),
        (0x3548245eb26257, false),
        (0x3199e7ef4211b3, false),
        (0x362f39017dae8b, false),
        (0x200d57aa6fdacb, false),
        (0x35e0a4efa1d275, false),
        (0x2ced55b026577f, false),
        (0x260b012010893d, false),
        (0x2df29cbcd59e9d, false),
        (0x3f2ac7488bd429, false),
        (0x3e5cb1711669fb, false),
        (0x226d8de57a9959, false),
        (0x3c8de80aaf5835, false),
        (0x2026a59efb219b, false),
        (0x39dfa4d13fb231, false),
        (0x3143d0464b3299, false),
    ];

    #[test]
    fn restic_irreducibility_vectors() {
        for &(f, want) in IRRED_TESTS {
            assert_eq!(Polynomial(f).is_irreducible(), want, "{f:#x}");
        }
        assert_eq!(Polynomial(0x3DA3358B4DC173).degree(), 53);
    }

    #[test]
    fn degree() {
        assert_eq!(Polynomial(0).degree(), -1);
        assert_eq!(Polynomial(1).degree(), 0);
        assert_eq!(Polynomial(2).degree(), 1);
        assert_eq!(Polynomial(3).degree(), 1);
        assert_eq!(Polynomial(1 << 53).degree(), 53);
        assert_eq!(Polynomial(u64::MAX).degree(), 63);
    }

    #[test]
    fn small_irreducibles() {
        // Irreducible polynomials over GF(2) of degree 1..=4.
        let irreducible = [0b10, 0b11, 0b111, 0b1011, 0b1101, 0b10011, 0b11001, 0b11111];
        for f in 0u64..32 {
            assert_eq!(
                Polynomial(f).is_irreducible(),
                irreducible.contains(&f),
                "{f:#b}"
            );
        }
    }

    #[test]
    fn products_are_reducible() {
        let a = 0x3DA3358B4DC173u64 >> 27; // some 26-degree polynomial
        let b = 0b1011u64; // x^3 + x + 1
        let p = clmul(a, b) as u64;
        assert!(!Polynomial(p).is_irreducible());
        // Product of two irreducible polynomials of degree 26 and 27.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let find = |deg: u32, rng: &mut rand::rngs::StdRng| loop {
            let f = (rng.next_u64() & ((1 << deg) - 1)) | (1 << deg) | 1;
            if Polynomial(f).is_irreducible() {
                return f;
            }
        };
        let f = find(26, &mut rng);
        let g = find(27, &mut rng);
        let fg = clmul(f, g) as u64;
        assert_eq!(Polynomial(fg).degree(), 53);
        assert!(!Polynomial(fg).is_irreducible());
        assert_eq!(mod64(fg, f), 0);
        assert_eq!(gcd(fg, g), g);
        // Squares are reducible too.
        let sq = clmul(0x3DA3358B4DC173 >> 30, 0x3DA3358B4DC173 >> 30) as u64;
        assert!(!Polynomial(sq).is_irreducible());
    }

    #[test]
    fn arithmetic() {
        // (x+1)^2 = x^2 + 1
        assert_eq!(clmul(0b11, 0b11), 0b101);
        assert_eq!(clmul(0, 12345), 0);
        assert_eq!(clmul(u64::MAX, 1), u64::MAX as u128);
        assert_eq!(clmul(1 << 63, 1 << 63), 1u128 << 126);
        // x^3 + x + 1 divides x^7 + 1 (it is primitive of degree 3).
        assert_eq!(mod64(0b1000_0001, 0b1011), 0);
        assert_eq!(mod64(0b1000, 0b1011), 0b011);
        assert_eq!(gcd(0b101, 0b11), 0b11); // x^2+1 = (x+1)^2
        assert_eq!(gcd(0b111, 0b11), 1);
        let p = 0x3DA3358B4DC173u64;
        // a·b mod p is compatible with reducing first.
        let (a, b) = (0x1234_5678_9abc_def0u64, 0x0fed_cba9_8765_4321u64);
        assert_eq!(mul_mod(a, b, p), mul_mod(mod64(a, p), mod64(b, p), p));
        // x^(2^53) ≡ x mod p for an irreducible p of degree 53.
        let mut x = 2u64;
        for _ in 0..53 {
            x = mul_mod(x, x, p);
        }
        assert_eq!(x, 2);
    }

    #[test]
    fn hex_round_trip() {
        let p = Polynomial(0x25b468838dcb75);
        assert_eq!(p.to_hex(), "25b468838dcb75");
        assert_eq!(Polynomial::from_hex("25b468838dcb75").unwrap(), p);
        assert_eq!(Polynomial::from_hex("25B468838DCB75").unwrap(), p);
        assert_eq!(Polynomial::from_hex("0025b468838dcb75").unwrap(), p);
        assert_eq!(Polynomial(0x3DA3358B4DC173).to_hex(), "3da3358b4dc173");
        assert_eq!(format!("{:x}", p), "25b468838dcb75");
        for bad in [
            "",
            "0x25b4",
            "+25b4",
            "-1",
            " 25b4",
            "25b4 ",
            "g",
            "1ffffffffffffffff",
        ] {
            assert!(Polynomial::from_hex(bad).is_err(), "{bad:?}");
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let p = Polynomial(rng.next_u64() >> (rng.next_u32() % 64));
            assert_eq!(Polynomial::from_hex(&p.to_hex()).unwrap(), p);
        }
    }

    #[test]
    fn random_polynomials_are_irreducible_degree_53() {
        for _ in 0..4 {
            let p = Polynomial::random().unwrap();
            assert_eq!(p.degree(), 53);
            assert!(p.is_irreducible());
            assert_eq!(p.0 & 1, 1);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let a = Polynomial::random_from(&mut rng).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let b = Polynomial::random_from(&mut rng).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.degree(), 53);
        assert!(a.is_irreducible());
    }

    /// DerivePolynomial semantics: candidates come from consecutive 8-byte
    /// little-endian words; the first irreducible candidate wins.
    #[test]
    fn random_from_takes_first_irreducible_candidate() {
        struct Words(Vec<u64>, usize);
        impl rand::RngCore for Words {
            fn next_u32(&mut self) -> u32 {
                unimplemented!()
            }
            fn next_u64(&mut self) -> u64 {
                unimplemented!()
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                self.try_fill_bytes(dest).unwrap()
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
                assert_eq!(dest.len(), 8);
                dest.copy_from_slice(&self.0[self.1].to_le_bytes());
                self.1 += 1;
                Ok(())
            }
        }
        // 0x38f1e565e288df is reducible, 0x3DA3358B4DC173 is not; high garbage bits
        // above bit 53 must be masked away.
        let mut words = Words(vec![0xff38f1e565e288df, 0xc03da3358b4dc172], 0);
        let p = Polynomial::random_from(&mut words).unwrap();
        assert_eq!(p, Polynomial(0x3DA3358B4DC173));
        assert_eq!(words.1, 2);
    }
}
