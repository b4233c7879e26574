//! Criterion benches: every case of BENCHMARKS.md across sizes, each as fusebox fused, fusebox
//! unfused, ndarray eager (NumPy's way), a hand-written ndarray Zip loop, and the copy
//! baseline. Sizes 1e3..1e7 by default; set FUSEBOX_BENCH_MAX=100000000 to go to 1e8.
//! `fusebox bench` runs the same matrix without criterion and prints ratios to copy.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fusebox::unstable::bench::{
    case_bytes_per_elem, case_expr, case_inputs, ndarray_eager, ndarray_zip, CASES,
};
use fusebox::{ArgView, Options, Session};
use std::time::Duration;

fn sizes() -> Vec<usize> {
    let max: usize = std::env::var("FUSEBOX_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    [1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]
        .into_iter()
        .filter(|n| *n <= max)
        .collect()
}

fn cases(c: &mut Criterion) {
    let fused = Session::new();
    let unfused = Session::with_options(Options::default().with_optimize(false));
    let copy = fused.compile(&case_expr("copy").unwrap()).unwrap();
    for case in CASES {
        let e = case_expr(case).unwrap();
        let (ff, uf) = (fused.compile(&e).unwrap(), unfused.compile(&e).unwrap());
        let mut g = c.benchmark_group(case);
        g.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(10);
        for n in sizes() {
            let ins = case_inputs(case, n);
            let views: Vec<ArgView<'_>> = ins.iter().map(|a| a.view().into()).collect();
            g.throughput(Throughput::Bytes(case_bytes_per_elem(case) * n as u64));
            g.bench_with_input(BenchmarkId::new("fused", n), &n, |b, _| {
                b.iter(|| ff.call(&views).unwrap())
            });
            g.bench_with_input(BenchmarkId::new("unfused", n), &n, |b, _| {
                b.iter(|| uf.call(&views).unwrap())
            });
            g.bench_with_input(BenchmarkId::new("ndarray-eager", n), &n, |b, _| {
                b.iter(|| ndarray_eager(case, &ins))
            });
            g.bench_with_input(BenchmarkId::new("ndarray-zip", n), &n, |b, _| {
                b.iter(|| ndarray_zip(case, &ins))
            });
            g.bench_with_input(BenchmarkId::new("copy", n), &n, |b, _| {
                b.iter(|| copy.call(&views[..1]).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, cases);
criterion_main!(benches);
