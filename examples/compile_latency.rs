//! Compile latency of the seed's kernels: plan + Cranelift compile of each, on a fresh backend
//! every time (no cache), median of 20. Issue target: the Gaussian in <= 2 ms.
use fusebox::unstable::bench::case_expr;
use fusebox::Session;
use std::time::Instant;

fn main() -> fusebox::Result<()> {
    for case in ["poly", "gauss", "two", "sumsq"] {
        let e = case_expr(case)?;
        let mut times = vec![];
        for _ in 0..20 {
            let s = Session::new();
            let t = Instant::now();
            let f = s.compile(&e)?;
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(s.stats().compilations, 1);
            drop(f);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{case:6} compile (plan + JIT): median {:.3} ms, min {:.3} ms",
            times[10] * 1e3,
            times[0] * 1e3
        );
    }
    Ok(())
}
