//! # ordo-bench: benchmarks
//!
//! Criterion micro-benchmarks live in `benches/` (run with `cargo bench
//! --workspace --bench NAME`); this library holds what they share, so that each figure in
//! `docs/BENCHMARKS.md` comes from code anyone can read and rerun.
//!
//! ## Layout
//!
//! - [`payload`]: deterministic, incompressible-looking payloads.
//! - [`baseline`]: the alternative Reed-Solomon crate, wrapped so the coding
//!   benchmark can put both crates side by side.
//! - [`load`]: the load generator of `ordo-bench` (workloads, key choice,
//!   the ordo and etcd targets behind one trait).
//! - [`null`]: the null target, ordo's APIs answered at once: the ceiling
//!   of the load generator and gRPC on this machine.
//! - [`pin`]: holding threads to one core (`ordo-bench compare --pin`).
//! - [`report`]: the comparison report and chart.

pub mod baseline;
pub mod load;
pub mod null;
pub mod pin;
pub mod report;

/// Every benchmark links this library, so every benchmark allocates the way
/// the `ordo` binary does. With the system allocator, buffers of a few
/// hundred KiB (shards of 1 MiB entries) are mapped and unmapped on each use
/// and page faults dominate the profile; that would measure glibc, not ordo.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A deterministic pseudo-random payload of `len` bytes (xorshift64), so runs
/// are repeatable and nothing compresses or short-circuits.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = ordo_txn::testkit::XorShift::new(seed | 1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_deterministic_and_varied() {
        assert_eq!(payload(1000, 7), payload(1000, 7));
        assert_ne!(payload(1000, 7), payload(1000, 8));
        let p = payload(4096, 1);
        let distinct = p.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(distinct > 200, "only {distinct} distinct byte values");
    }
}
