//! When a kernel call goes to the thread pool, and how it splits its work.
//!
//! Handing work to the pool has a fixed price: waking the idle workers, and joining them.
//! Threads pay off once the time they save exceeds it, and that depends on the kernel: a copy
//! needs ~10^5 elements, a chain of transcendentals a few hundred. Nothing here is a
//! threshold written in code; two measurements decide:
//! - the pool's **hand-off** (`handoff_s`): measured once per process and thread count, the
//!   first time a call could use the pool: each worker gets a short busy job after the workers
//!   went idle, and what the call takes beyond the job itself is the hand-off;
//! - the kernel's **cost per element** on one thread (`ElemCost`, kept per compiled kernel):
//!   measured by timing a prefix of a call on the calling thread (the prefix is part of the
//!   call's own work, so nothing is done twice), and refreshed whenever a call is close to the
//!   break-even point.
//!
//! [`pool_pays`] is the rule both the backend and the cost model apply: the remaining work goes
//! to the pool when the time the other threads save is at least twice the hand-off. The
//! chunks a parallel call is cut into are sized from the same numbers: each chunk is worth a
//! few hand-offs (so scheduling stays a small part of it), between one and four chunks per
//! thread (four let work stealing balance a busy core).
//!
//! Invariant: the decision changes only *where* work runs, never the result. Stores write
//! disjoint ranges; reductions have fixed chunk boundaries and one merge tree (see the parent
//! module), so a reduction's bits do not depend on any of this.
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use crate::target::pool_pays;

/// How many chunks a parallel call of `work_s` seconds (one thread's time) is cut into: each
/// worth at least [`CHUNK_HANDOFFS`] hand-offs, at least one and at most four per thread.
pub fn chunks_for(work_s: f64, threads: usize, handoff_s: f64) -> usize {
    let by_cost = (work_s / (CHUNK_HANDOFFS * handoff_s.max(1e-9))).floor();
    (by_cost.min((4 * threads) as f64) as usize).max(threads)
}

/// A chunk of a parallel call should take at least this many hand-offs.
pub const CHUNK_HANDOFFS: f64 = 4.0;

/// The measured hand-off of a pool with `threads` workers (seconds), measured on first use and
/// shared by every backend of the process with that many threads.
pub(crate) fn handoff_s(pool: &rayon::ThreadPool, threads: usize) -> f64 {
    static MEASURED: OnceLock<Mutex<HashMap<usize, f64>>> = OnceLock::new();
    let map = MEASURED.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(h) = map.lock().unwrap_or_else(|e| e.into_inner()).get(&threads) {
        return *h;
    }
    let h = measure_handoff(pool, threads);
    *map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(threads)
        .or_insert(h)
}

/// Median over a few rounds of: let the workers go idle (as they are between a user's calls),
/// then give each of them a busy job of `JOB`; the time beyond `JOB` is the hand-off.
fn measure_handoff(pool: &rayon::ThreadPool, threads: usize) -> f64 {
    const ROUNDS: usize = 5;
    const IDLE: Duration = Duration::from_micros(300);
    const JOB: Duration = Duration::from_micros(20);
    let mut samples = [0.0f64; ROUNDS];
    for s in &mut samples {
        std::thread::sleep(IDLE);
        let t = Instant::now();
        pool.install(|| {
            (0..threads).into_par_iter().for_each(|_| {
                let start = Instant::now();
                while start.elapsed() < JOB {
                    std::hint::spin_loop();
                }
            })
        });
        *s = (t.elapsed().saturating_sub(JOB)).as_secs_f64();
    }
    samples.sort_by(f64::total_cmp);
    samples[ROUNDS / 2]
}

/// A kernel's measured cost per element on one thread, in seconds (0: not measured yet).
#[derive(Debug, Default)]
pub(crate) struct ElemCost(AtomicU64);

impl ElemCost {
    pub(crate) fn get(&self) -> Option<f64> {
        let v = f64::from_bits(self.0.load(Ordering::Relaxed));
        (v > 0.0).then_some(v)
    }
    pub(crate) fn set(&self, s: f64) {
        if s.is_finite() && s > 0.0 {
            self.0.store(s.to_bits(), Ordering::Relaxed);
        }
    }
}

/// What a call of `n` elements does, given what is known of its kernel's cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Choice {
    /// All on the calling thread.
    Serial,
    /// Time a prefix of this many elements on the calling thread, then decide for the rest.
    Probe(usize),
    /// All on the pool, at this cost per element.
    Parallel(f64),
}

/// Elements in a probe: at least enough to time, at most a small part of a parallel call.
pub(crate) const PROBE_MIN: usize = 256;
const PROBE_MAX: usize = 16 << 10;

/// The choice for a call of `n` elements on `threads` threads, where `known` is the kernel's
/// measured cost per element: decide from it unless the call is within a factor of four of
/// the break-even point (then measure again); measure when nothing is known.
pub(crate) fn choose(n: usize, threads: usize, handoff: f64, known: Option<f64>) -> Choice {
    if threads < 2 || n < 2 * PROBE_MIN {
        return Choice::Serial;
    }
    let probe = Choice::Probe((n / 16).clamp(PROBE_MIN, PROBE_MAX) & !63);
    match known {
        None => probe,
        Some(e) => {
            let work = n as f64 * e;
            if pool_pays(work / 4.0, threads, handoff) {
                Choice::Parallel(e)
            } else if !pool_pays(work * 4.0, threads, handoff) {
                Choice::Serial
            } else {
                probe
            }
        }
    }
}

/// Cut `[lo, hi)` into `chunks` ranges whose inner boundaries are multiples of 64 elements
/// (whole cache lines of any dtype, and whole SIMD iterations).
pub(crate) fn split(lo: usize, hi: usize, chunks: usize) -> Vec<(usize, usize)> {
    let per = (hi - lo).div_ceil(chunks.max(1)).next_multiple_of(64);
    (0..chunks)
        .map(|c| ((lo + c * per).min(hi), (lo + (c + 1) * per).min(hi)))
        .filter(|(a, b)| a < b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_pays_when_the_saved_time_covers_two_handoffs() {
        // 2 threads save half the work: 20 us of work saves 10 us, two 5 us hand-offs.
        assert!(pool_pays(20e-6, 2, 5e-6));
        assert!(!pool_pays(19e-6, 2, 5e-6));
        // 4 threads save three quarters.
        assert!(pool_pays(13.4e-6, 4, 5e-6));
        assert!(!pool_pays(1.0, 1, 5e-6));
    }

    #[test]
    fn chunks_are_worth_a_few_handoffs_between_one_and_four_per_thread() {
        assert_eq!(chunks_for(1e-3, 2, 5e-6), 8);
        assert_eq!(chunks_for(60e-6, 2, 5e-6), 3);
        assert_eq!(chunks_for(10e-6, 2, 5e-6), 2);
    }

    #[test]
    fn choices_follow_the_known_cost_and_measure_near_break_even() {
        let h = 5e-6;
        // 1 ns per element: break-even (20 us of work) at 20,000 elements.
        assert_eq!(choose(1_000_000, 2, h, Some(1e-9)), Choice::Parallel(1e-9));
        assert_eq!(choose(4_000, 2, h, Some(1e-9)), Choice::Serial);
        assert!(matches!(
            choose(20_000, 2, h, Some(1e-9)),
            Choice::Probe(1216)
        ));
        assert!(matches!(choose(20_000, 2, h, None), Choice::Probe(_)));
        assert_eq!(choose(400, 2, h, None), Choice::Serial);
        assert_eq!(choose(1 << 30, 1, h, None), Choice::Serial);
    }

    #[test]
    fn split_tiles_the_range_on_64_element_boundaries() {
        for (lo, hi, c) in [(0, 1000, 3), (100, 100_000, 8), (5, 70, 4), (0, 64, 2)] {
            let r = split(lo, hi, c);
            assert!(r.len() <= c && !r.is_empty());
            assert_eq!(r[0].0, lo);
            assert_eq!(r[r.len() - 1].1, hi);
            for w in r.windows(2) {
                assert_eq!(w[0].1, w[1].0);
                assert_eq!((w[0].1 - lo) % 64, 0);
            }
        }
    }

    #[test]
    fn the_measured_handoff_is_positive_and_sane() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let h = measure_handoff(&pool, 2);
        // Waking a worker takes microseconds; a tenth of a second would be a broken measure.
        assert!(h > 0.0 && h < 0.1, "{h}");
    }
}
