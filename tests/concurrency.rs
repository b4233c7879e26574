//! Concurrency: a `Session` is `Send + Sync`; many threads computing different and identical
//! expressions on one session at once get the reference evaluator's results, and each distinct
//! kernel is compiled once (the caches make concurrent requests for one kernel wait for a
//! single compilation). The kernel caches are bounded and evict the least recently used kernel.
mod common;
use fusebox::unstable::cpu::{CpuBackend, CpuCounters};
use fusebox::unstable::kir::{Const, Inst, Kernel, KernelBuilder, Output};
use fusebox::BinaryOp;
use fusebox::DType;
use fusebox::{where_, Device, DynArray, Expr, Options, Session, Stats};
use ndarray::Array1;
use std::sync::{Arc, Barrier};

const fn assert_send_sync<T: Send + Sync>() {}
const _: () = assert_send_sync::<Session>();
const _: () = assert_send_sync::<Expr>();
const _: () = assert_send_sync::<fusebox::Compiled>();
const _: () = assert_send_sync::<CpuBackend>();
const _: () = assert_send_sync::<fusebox::unstable::gpu::GpuBackend>();

/// Distinct expressions over shared inputs: small (one thread) and large (the rayon pool).
fn workload() -> Vec<Expr> {
    let mut out = vec![];
    for n in [1000usize, 150_000] {
        let x = Expr::data(
            Array1::from_shape_fn(n, |i| (i as f64 - 300.0) * 0.37),
            Some("x"),
        );
        let y = Expr::data(
            Array1::from_shape_fn(n, |i| ((i * 7919) % 1000) as f64 * 0.5 - 20.0),
            Some("y"),
        );
        let i = Expr::data(
            Array1::from_shape_fn(n, |k| (k as i32).wrapping_mul(2_654_435)),
            Some("i"),
        );
        out.extend([
            (5.0 * &x + 4.0) * &x + 1.0,
            &x * &y - &y / 3.0,
            where_(x.gt(&y), &x, &y * 2.0),
            (&i >> 3i64) ^ (&i * 3),
            (&i % 17).astype(DType::F64) + &x,
            x.abs().sqrt() + y.floor(),
            x.maximum(&y).minimum(10.0),
            (&x * &y).sum(),
            i.sum(),
        ]);
    }
    out
}

fn session(device: Device) -> Session {
    Session::with_options(Options::default().with_device(device))
}

/// `threads` threads each compute every expression of `work` (starting at different offsets,
/// so identical expressions run at the same time) on one shared session.
fn stress(device: Device, threads: usize, rounds: usize) -> Stats {
    let work = Arc::new(workload());
    let reference = session(Device::Reference);
    let expected: Arc<Vec<DynArray>> = Arc::new(
        work.iter()
            .map(|e| reference.compute(e).expect("reference"))
            .collect(),
    );
    // The same work on one thread: how many distinct kernels it compiles.
    let sequential = session(device);
    for e in work.iter() {
        sequential.compute(e).expect("sequential");
    }
    let distinct = sequential.stats().compilations;

    let shared = session(device);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (s, work, expected, start) = (
                shared.clone(),
                work.clone(),
                expected.clone(),
                start.clone(),
            );
            std::thread::spawn(move || {
                start.wait();
                for r in 0..rounds {
                    for k in 0..work.len() {
                        let j = (k + t * 5 + r) % work.len();
                        let got = s.compute(&work[j]).expect("compute");
                        let what = format!("thread {t} round {r}: {}", work[j]);
                        match &work[j].kind() {
                            // Sums run in another order than NumPy's pairwise one.
                            fusebox::ExprKind::Reduce(..) => {
                                let summed = match work[j].kind() {
                                    fusebox::ExprKind::Reduce(_, a, _) => {
                                        session(Device::Reference).compute(a).expect("operand")
                                    }
                                    _ => unreachable!(),
                                };
                                if let Err(m) = common::sum_agree(&got, &expected[j], &summed) {
                                    panic!("{what}: {m}");
                                }
                            }
                            _ => common::assert_agree(&what, &got, &expected[j], 0),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker thread panicked");
    }
    let stats = shared.stats();
    assert_eq!(
        stats.compilations, distinct,
        "{device}: every distinct kernel compiles once ({stats:?})"
    );
    // Every other request is a hit. (GPU compilations also count the sum-pass pipelines, kept
    // in a cache of their own without hit counts, so the identity is the CPU's.)
    if device == Device::Cpu {
        let requests = sequential.stats().compilations + sequential.stats().cache_hits;
        assert_eq!(
            stats.compilations + stats.cache_hits,
            requests * (threads * rounds) as u64,
            "{device}: every other request is a cache hit"
        );
    }
    assert_eq!(stats.evictions, 0);
    stats
}

#[test]
fn many_threads_one_cpu_session() {
    let stats = stress(Device::Cpu, 8, 3);
    assert!(stats.compilations > 0 && stats.cache_hits > stats.compilations);
}

#[test]
fn many_threads_one_gpu_session() {
    if !common::gpu_available() {
        return;
    }
    stress(Device::Gpu(0), 4, 2);
}

/// `x * c + y` with a given constant: distinct kernels for distinct `c`.
fn kernel(c: f64) -> Kernel {
    let mut b = KernelBuilder::new();
    let (ix, iy) = (b.input(DType::F64), b.input(DType::F64));
    let x = b.push(Inst::Load { input: ix }, DType::F64);
    let y = b.push(Inst::Load { input: iy }, DType::F64);
    let k = b.push(Inst::Const(Const::F64(c)), DType::F64);
    let m = b.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: x,
            rhs: k,
        },
        DType::F64,
    );
    let s = b.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m,
            rhs: y,
        },
        DType::F64,
    );
    b.finish(Output::Store { value: s })
}

#[test]
fn cpu_cache_evicts_least_recently_used() {
    let be = CpuBackend::new(1).unwrap();
    assert_eq!(
        fusebox::unstable::cache::default_capacity(),
        std::env::var("FUSEBOX_KERNEL_CACHE")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(fusebox::unstable::cache::DEFAULT_CAPACITY)
    );
    be.set_cache_capacity(2);
    let a = be.compile(&kernel(1.0)).unwrap();
    be.compile(&kernel(2.0)).unwrap();
    be.compile(&kernel(1.0)).unwrap(); // 1.0 is now the most recent
    be.compile(&kernel(3.0)).unwrap(); // evicts 2.0
    assert_eq!(be.cached_kernels(), 2);
    assert_eq!(
        be.counters(),
        CpuCounters {
            compilations: 3,
            cache_hits: 1,
            evictions: 1
        }
    );
    let again = be.compile(&kernel(1.0)).unwrap();
    assert!(Arc::ptr_eq(&a, &again), "1.0 stayed cached");
    be.compile(&kernel(2.0)).unwrap(); // compiled again, evicts 3.0
    assert_eq!(be.counters().compilations, 4);
    assert_eq!(be.counters().evictions, 2);
    // An evicted kernel still held by a caller keeps working.
    be.set_cache_capacity(1);
    assert_eq!(be.cached_kernels(), 1);
    let x = ndarray::arr1(&[1.0, 2.0]).into_dyn();
    let y = ndarray::arr1(&[10.0, 20.0]).into_dyn();
    let out = be
        .run(&a, &[(&x).into(), (&y).into()], &[2])
        .unwrap()
        .into_f64()
        .unwrap();
    assert_eq!(out.as_slice().unwrap(), &[11.0, 22.0]);
}

#[test]
fn cpu_cache_compiles_a_kernel_once_under_contention() {
    let be = Arc::new(CpuBackend::new(1).unwrap());
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (be, start) = (be.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                be.compile(&kernel(42.0)).unwrap()
            })
        })
        .collect();
    let ks: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(ks.iter().all(|k| Arc::ptr_eq(k, &ks[0])));
    assert_eq!(be.counters().compilations, 1);
    assert_eq!(be.counters().cache_hits, 7);
}

#[test]
fn gpu_cache_evicts_least_recently_used() {
    if !common::gpu_available() {
        return;
    }
    let be = fusebox::unstable::gpu::GpuBackend::new(0).unwrap();
    be.set_cache_capacity(1);
    // Kernels that differ only in float constants share one pipeline (constants travel in a
    // buffer), so use different operators.
    let add = kernel(1.0);
    let mut b = KernelBuilder::new();
    let (ix, iy) = (b.input(DType::F64), b.input(DType::F64));
    let x = b.push(Inst::Load { input: ix }, DType::F64);
    let y = b.push(Inst::Load { input: iy }, DType::F64);
    let d = b.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: x,
            rhs: y,
        },
        DType::F64,
    );
    let sub = b.finish(Output::Store { value: d });
    be.compile(&add).unwrap();
    be.compile(&sub).unwrap();
    assert_eq!(be.cached_kernels(), 1);
    assert_eq!(be.counters().evictions, 1);
    be.compile(&add).unwrap();
    assert_eq!(be.counters().evictions, 2);
    assert_eq!(be.counters().cache_hits, 0);
}
