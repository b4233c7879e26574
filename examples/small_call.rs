//! Per-call cost of a compiled function on a small array (issue target: poly at n = 1e3 in
//! <= 1 us per call, output allocation included), beside the copy kernel and a hand-written
//! loop over the same data. Usage: `small_call [n] [calls] [threads]` (defaults 1000, 200000, all cores; under callgrind
//! pass 1 thread, since its slowed clock makes the thread choice go parallel). Also the
//! harness for `valgrind --tool=callgrind`, which counts the call path's instructions.
use fusebox::unstable::bench::{case_expr, case_inputs};
use fusebox::{ArgView, DynArray, Options, Session};
use std::time::Instant;

fn main() -> fusebox::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let calls: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let threads: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let s = Session::with_options(Options::default().with_threads(threads));
    let x = case_inputs("poly", n).remove(0);
    let poly = s.compile(&case_expr("poly")?)?;
    let copy = s.compile(&case_expr("copy")?)?;
    let view: [ArgView<'_>; 1] = [x.view().into()];
    let mut sink = 0.0;
    let mut per_call = |name: &str, f: &mut dyn FnMut() -> f64| {
        // Five rounds, interleaved by the caller's order; the best round is reported.
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..calls / 5 {
                sink += f();
            }
            best = best.min(t.elapsed().as_secs_f64() / (calls / 5) as f64);
        }
        println!("{name:10} n = {n}: {:.3} us per call", best * 1e6);
    };
    // The first element of a result (what keeps the call from being optimized away).
    let first = |r: DynArray| match r {
        DynArray::F64(a) => a[0],
        _ => f64::NAN,
    };
    per_call("poly", &mut || first(poly.call(&view).expect("poly")));
    per_call("copy", &mut || first(copy.call(&view).expect("copy")));
    per_call("hand loop", &mut || {
        let y: Vec<f64> = x
            .as_slice()
            .expect("contiguous")
            .iter()
            .map(|&v| (5.0 * v + 4.0) * v + 1.0)
            .collect();
        y[0]
    });
    // No per-call cliffs (issue 18): a compiled function cycling through 50 lengths around n
    // (each length's plan re-derived once from the plan of its rank, then kept), and `compute_with` on an expression it has seen (the
    // session's plan cache). Medians of single calls after one warm-up round.
    let lengths: Vec<usize> = (0..50).map(|i| n - n.min(25) + i).collect();
    let arrays: Vec<ndarray::Array1<f64>> = lengths
        .iter()
        .map(|&m| ndarray::Array1::linspace(-1.0, 1.0, m))
        .collect();
    let views: Vec<ArgView<'_>> = arrays.iter().map(ArgView::from).collect();
    let median = |name: &str, f: &mut dyn FnMut(usize) -> f64, sink: &mut f64| {
        let rounds = (calls / 50).max(2);
        let mut times = Vec::with_capacity(rounds * 50);
        for r in 0..rounds {
            for i in 0..50 {
                let t = Instant::now();
                *sink += f(i);
                if r > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name:10} n ~ {n}: {:.3} us per call (median)",
            times[times.len() / 2] * 1e6
        );
    };
    median(
        "poly x50 lengths",
        &mut |i| first(poly.call(&views[i..i + 1]).expect("poly")),
        &mut sink,
    );
    // What a length costs the first time it is seen (the plan of its rank with the sizes
    // re-derived and placement asked again; no lowering, fusion or compiling): the one-off
    // price of a new shape, and the price per call of a function that sees more distinct
    // shapes than it keeps plans for.
    let fresh: Vec<ndarray::Array1<f64>> = (0..200)
        .map(|i| ndarray::Array1::linspace(-1.0, 1.0, n + 25 + i))
        .collect();
    let mut times: Vec<f64> = fresh
        .iter()
        .map(|a| {
            let v = [ArgView::from(a)];
            let t = Instant::now();
            sink += first(poly.call(&v).expect("poly"));
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{:10} n ~ {}: {:.3} us per call (median of 200 new lengths)",
        "poly first call of a length",
        n,
        times[times.len() / 2] * 1e6
    );
    let t = s.symbol("x", fusebox::DType::F64, &[n]);
    let e = (5.0 * &t + 4.0) * &t + 1.0;
    median(
        "compute_with repeated",
        &mut |_| {
            first(
                s.compute_with(&e, &[("x", x.view().into())])
                    .expect("compute_with"),
            )
        },
        &mut sink,
    );
    println!("(checksum {sink})");
    Ok(())
}
