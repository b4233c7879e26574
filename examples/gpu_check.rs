//! The device check of `benches/gpu_check.sh`: on GPU adapter 0, the device's copy bandwidth,
//! then fused add1/poly/gauss/two/sumsq/softmax in float32 and float64 over sizes, resident
//! (data on the device, `compute_on_device`) and streamed (host data, `compute_with`), each as
//! GB/s of the bytes the fused kernel must move and as a fraction of the copy bandwidth. One
//! JSON object on stdout, a short table on stderr.
//!
//! `cargo run --release --example gpu_check -- [--sizes 1e6,1e7,...] [--budget-s S]`: sizes
//! above what the device's memory (and one binding, for resident data) holds are skipped; the
//! whole run stops adding sizes when the budget is spent.
use fusebox::unstable::gpu::adapters;
use fusebox::{ArgView, DType, Device, DynArray, Expr, Options, Session};
use ndarray::Array1;
use std::time::Instant;

const MU: f64 = 0.5;
const SIGMA: f64 = 1.5;

/// The expression of `case` over symbols `x` (and `b`) of dtype `t` and length `n`.
fn case_expr(case: &str, t: DType, n: usize) -> Expr {
    let x = Expr::symbol("x", t, &[n]);
    let b = Expr::symbol("b", t, &[n]);
    match case {
        "add1" => &x + 1.0,
        "poly" => (5.0 * &x + 4.0) * &x + 1.0,
        "gauss" => {
            1.0 / (SIGMA * (2.0 * std::f64::consts::PI).sqrt())
                * (-(&x - MU).pow(2.0) / (2.0 * SIGMA * SIGMA)).exp()
        }
        "two" => 2.0 * &x + 3.0 * &b * &b - &x / &b,
        "sumsq" => (&x * &x).sum(),
        "softmax" => (&x - x.max()).exp() / (&x - x.max()).exp().sum(),
        _ => unreachable!("unknown case {case}"),
    }
}

/// Bytes the fused plan must move per element (inputs read once, the result written once; the
/// softmax's three kernels read x three times and write once).
fn bytes_per_elem(case: &str, size: usize) -> usize {
    match case {
        "two" => 3 * size,
        "sumsq" => size,
        "softmax" => 4 * size,
        _ => 2 * size,
    }
}

fn inputs(case: &str, t: DType, n: usize) -> Vec<(&'static str, DynArray)> {
    let x = Array1::linspace(-5.0, 5.0, n);
    let b = Array1::from_iter((0..n).map(|i| 1.0 + (i % 1000) as f64 / 1000.0));
    let conv = |a: Array1<f64>| -> DynArray {
        match t {
            DType::F32 => a.mapv(|v| v as f32).into_dyn().into(),
            _ => a.into_dyn().into(),
        }
    };
    let mut v = vec![("x", conv(x))];
    if case == "two" {
        v.push(("b", conv(b)));
    }
    v
}

/// Median seconds of `f` over repetitions within `budget_s` (at least 3, at most 15).
fn median(budget_s: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut ts = vec![];
    while ts.len() < 3 || (ts.len() < 15 && start.elapsed().as_secs_f64() < budget_s) {
        let s = Instant::now();
        f();
        ts.push(s.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    ts[ts.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let sizes: Vec<usize> = arg("--sizes")
        .unwrap_or_else(|| "1e6,1e7,1e8,1e9".into())
        .split(',')
        .map(|s| s.trim().parse::<f64>().expect("a size") as usize)
        .collect();
    let budget_s: f64 = arg("--budget-s").map_or(300.0, |s| s.parse().expect("seconds"));
    let Some(info) = adapters().first().cloned() else {
        println!("{{\"error\": \"no GPU adapter\"}}");
        return;
    };
    let started = Instant::now();
    let s = Session::with_options(Options::default().with_device(Device::Gpu(0)));
    // The device's copy bandwidth: a resident `x + 0.0` (read n, write n) at the largest size
    // that fits one binding, in f32.
    let copy_n = ((info.max_binding_size / 4) as usize).min(1 << 26);
    let copy_x = inputs("add1", DType::F32, copy_n).remove(0).1;
    let xd = s.to_device(&copy_x.view()).expect("upload");
    let tiny = s
        .to_device(&ArgView::from(&Array1::from(vec![0.0f32])))
        .expect("upload");
    let t_sym = Expr::symbol("t", DType::F32, &[1]);
    let sync = || {
        let d = s
            .compute_on_device(&(&t_sym + 1.0), &[("t", &tiny)])
            .unwrap();
        s.to_host(&d).unwrap();
    };
    let sync_s = median(1.0, sync);
    let copy_x_sym = Expr::symbol("x", DType::F32, &[copy_n]);
    let copy_e = &copy_x_sym + 0.0;
    let t = median(2.0, || {
        s.compute_on_device(&copy_e, &[("x", &xd)]).unwrap();
        sync();
    });
    drop(xd);
    let copy_gbps = 8.0 * copy_n as f64 / (t - sync_s).max(1e-9) / 1e9;
    eprintln!(
        "{} ({}, {}): copy {:.1} GB/s (n = {copy_n}, f32), sync {:.0} us",
        info.name,
        info.backend,
        info.driver,
        copy_gbps,
        sync_s * 1e6
    );
    eprintln!(
        "{:<8} {:<4} {:>12} {:>14} {:>8} {:>14} {:>8}",
        "case", "type", "n", "resident GB/s", "% copy", "streamed GB/s", "% copy"
    );
    let mut records = vec![];
    let cases = ["add1", "poly", "gauss", "two", "sumsq", "softmax"];
    'sizes: for &n in &sizes {
        for t in [DType::F32, DType::F64] {
            if t == DType::F64 && !info.f64 {
                continue;
            }
            for case in cases {
                if started.elapsed().as_secs_f64() > budget_s {
                    eprintln!("budget spent: stopping before n = {n}");
                    break 'sizes;
                }
                let ins = inputs(case, t, n);
                let host_bytes: usize = ins.iter().map(|(_, a)| a.nbytes()).sum();
                // Host data, device copies and the result must fit in the device's memory
                // (estimated as 16 bindings) and the host's.
                if (3 * host_bytes) as u64 > 16 * info.max_binding_size {
                    continue;
                }
                let e = case_expr(case, t, n);
                let binds: Vec<(&str, ArgView<'_>)> =
                    ins.iter().map(|(k, a)| (*k, a.view())).collect();
                let moved = (bytes_per_elem(case, t.size()) * n) as f64;
                let streamed = median(1.0, || {
                    s.compute_with(&e, &binds).unwrap();
                });
                let fits = ins
                    .iter()
                    .all(|(_, a)| a.nbytes() as u64 <= info.max_binding_size);
                let resident = if fits {
                    let devs: Vec<_> = ins
                        .iter()
                        .map(|(_, a)| s.to_device(&a.view()).unwrap())
                        .collect();
                    let dbinds: Vec<(&str, &fusebox::DeviceArray)> =
                        ins.iter().zip(&devs).map(|((k, _), d)| (*k, d)).collect();
                    Some(median(1.0, || {
                        s.compute_on_device(&e, &dbinds).unwrap();
                        sync();
                    }))
                } else {
                    None
                };
                let gbps = |secs: f64| moved / secs.max(1e-9) / 1e9;
                // The resident time includes one wait for the device; take it off where it is
                // small against the time (a noisy wait would give nonsense at small sizes).
                let res_gbps =
                    resident.map(|r| gbps(if r > 2.0 * sync_s { r - sync_s } else { r }));
                eprintln!(
                    "{:<8} {:<4} {:>12} {:>14} {:>8} {:>14.2} {:>8.0}",
                    case,
                    t.to_string().replace("float", "f"),
                    n,
                    res_gbps.map_or("-".into(), |g| format!("{g:.2}")),
                    res_gbps.map_or("-".into(), |g| format!("{:.0}", 100.0 * g / copy_gbps)),
                    gbps(streamed),
                    100.0 * gbps(streamed) / copy_gbps
                );
                records.push(serde_json::json!({
                    "case": case,
                    "dtype": t.to_string(),
                    "n": n,
                    "bytes": moved,
                    "resident_s": resident,
                    "resident_gbps": res_gbps,
                    "streamed_s": streamed,
                    "streamed_gbps": gbps(streamed),
                }));
            }
        }
    }
    let out = serde_json::json!({
        "adapter": info.name,
        "backend": info.backend,
        "driver": info.driver,
        "fast_math_barriers": info.fast_math_barriers,
        "copy_gbps": copy_gbps,
        "sync_s": sync_s,
        "records": records,
        "elapsed_s": started.elapsed().as_secs_f64(),
    });
    println!("{out}");
}
