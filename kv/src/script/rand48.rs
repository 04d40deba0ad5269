//! The `rand48` generator Redis gives `math.random` (its `rand.c`: the
//! 48-bit linear congruential generator of POSIX `lrand48`), so that a
//! seed gives the same numbers on every machine.

use std::sync::atomic::{AtomicU64, Ordering};

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const INCREMENT: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;

/// The generator's 48-bit state.
#[derive(Debug, Default)]
pub(crate) struct Rand48 {
    state: AtomicU64,
}

impl Rand48 {
    /// `srand48(seed)`: the state's high 32 bits are the seed.
    pub(crate) fn reseed(&self, seed: i32) {
        self.state.store(((u64::from(seed as u32)) << 16) | 0x330E, Ordering::Relaxed);
    }

    /// Seeds from a log entry's 64-bit draw.
    pub(crate) fn seed(&self, seed: u64) {
        self.reseed((seed ^ (seed >> 32)) as i32);
    }

    /// `lrand48()`: the next number in `[0, 2^31)`.
    pub(crate) fn next(&self) -> i64 {
        let state = (self.state.load(Ordering::Relaxed).wrapping_mul(MULTIPLIER).wrapping_add(INCREMENT)) & MASK;
        self.state.store(state, Ordering::Relaxed);
        (state >> 17) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_posix_lrand48s() {
        // glibc: srand48(0); lrand48() → 366850414, 1610402240, 206956554.
        let random = Rand48::default();
        random.reseed(0);
        assert_eq!([random.next(), random.next(), random.next()], [366850414, 1610402240, 206956554]);
    }
}
