//! The benchmark matrix behind `fusebox bench` and `benches/`: the cases of BENCHMARKS.md
//! at any size, each run by every implementation that applies:
//! - `fused`, `unfused`: fusebox compiled functions returning a fresh result;
//! - `fused-into`: the fused function writing into a preallocated output (`call_into`);
//! - `kernels-into`: the same without the row form (`Options::with_row_form(false)`: a plan
//!   with a reduction along axis 1 runs as its kernels, as before the row form existed);
//! - `ndarray-eager` (temporaries as NumPy makes them) and `ndarray-zip` (a hand-written fused
//!   loop), for the 1-D float64 cases only;
//! - `copy` (fusebox's copy kernel, fresh output) and `copy-into` (the same kernel into an
//!   existing buffer: the machine's limit), both copying `n` float64 whatever the case, except
//!   for the narrow-dtype cases (`add_u8`), where they copy as many bytes as the case moves
//!   (`n * bytes_per_elem / 16` float64), so "x copy-into" is the same-bytes ratio.
//!
//! The 2-D cases (`rowbcast`, `colbcast`, `softmax`, `standardize`) use `n / 1000` rows of 1000.
//!
//! Implementations run interleaved (one call of each per round, median over rounds), so the
//! ratios within one run are fair on a noisy machine.
use crate::array::{ArgView, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::ops::{ReduceOp, Reduction};
use crate::options::{Device, Options};
use crate::session::{Compiled, Session};
use ndarray::{Array1, Zip};
use std::time::{Duration, Instant};

/// The benchmark cases.
pub const CASES: [&str; 13] = [
    "copy",
    "add1",
    "poly",
    "gauss",
    "sumsq",
    "two",
    "rowbcast",
    "colbcast",
    "softmax",
    "standardize",
    "gauss32",
    "relu_mix",
    "add_u8",
];
/// The implementations.
pub const IMPLS: [&str; 8] = [
    "fused",
    "fused-into",
    "kernels-into",
    "unfused",
    "ndarray-eager",
    "ndarray-zip",
    "copy",
    "copy-into",
];
/// The cases the ndarray implementations cover (1-D float64).
const FLAT_CASES: [&str; 6] = ["copy", "add1", "poly", "gauss", "sumsq", "two"];
/// Columns of the 2-D cases.
const COLS: usize = 1000;

const MU: f64 = -1.33;
const SIGMA: f64 = 1.25;

/// The seed's Gaussian of `x`.
fn gauss(x: &Expr) -> Expr {
    1.0 / (SIGMA * (2.0 * std::f64::consts::PI).sqrt())
        * (-(x - MU).pow(2.0) / (2.0 * SIGMA * SIGMA)).exp()
}

/// The expression of a case over symbols `x` (and `b` for `two`, `relu_mix` and `add_u8`, `v` for
/// `rowbcast`, `c` for `colbcast`): in the 2-D cases `x` has `COLS` columns.
pub fn case_expr(case: &str) -> Result<Expr> {
    let x = Expr::symbol("x", DType::F64, &[0]);
    let b = Expr::symbol("b", DType::F64, &[0]);
    let m = Expr::symbol("x", DType::F64, &[1, COLS]);
    let sum = Reduction::Op(ReduceOp::Sum);
    Ok(match case {
        "copy" => x,
        "add1" => &x + 1.0,
        "poly" => (5.0 * &x + 4.0) * &x + 1.0,
        "gauss" => gauss(&x),
        "sumsq" => (&x * &x).sum(),
        "two" => 2.0 * &x + 3.0 * &b * &b - &x / &b,
        "rowbcast" => &m + Expr::symbol("v", DType::F64, &[COLS]),
        "colbcast" => &m + Expr::symbol("c", DType::F64, &[1, 1]),
        "softmax" => {
            let e = (&m - m.reduce(Reduction::Op(ReduceOp::Max), Some(&[1][..]), true)).exp();
            &e / e.reduce(sum, Some(&[1][..]), true)
        }
        "standardize" => {
            (&m - m.reduce(Reduction::Mean, Some(&[0][..]), false))
                / m.reduce(Reduction::Std { ddof: 0 }, Some(&[0][..]), false)
        }
        "gauss32" => gauss(&Expr::symbol("x", DType::F32, &[0])),
        "relu_mix" => {
            let a = Expr::symbol("x", DType::F32, &[0]);
            crate::expr::where_(a.gt(0.0), &a, 0.01 * &a) + &b
        }
        "add_u8" => Expr::symbol("x", DType::U8, &[0]) + Expr::symbol("b", DType::U8, &[0]),
        _ => {
            return Err(Error::Argument {
                message: format!("unknown bench case `{case}` (one of {CASES:?})"),
            })
        }
    })
}

/// Bytes a fused kernel of the case must move per element (BENCHMARKS.md).
pub fn case_bytes_per_elem(case: &str) -> u64 {
    match case {
        "sumsq" | "gauss32" => 8,
        "two" => 24,
        "relu_mix" => 20,
        "add_u8" => 3,
        _ => 16,
    }
}

/// Length of the float64 array the `copy` baselines copy for `case` at size `n`: `n`, or for
/// a narrow-dtype case the same bytes as the case moves (at least one element).
pub fn copy_len(case: &str, n: usize) -> usize {
    match case {
        "add_u8" => (n * case_bytes_per_elem(case) as usize / 16).max(1),
        _ => n,
    }
}

/// The arguments of a case at size `n`, by parameter name (2-D cases: `n / COLS` rows, at
/// least one): x = linspace(-5, 5); b in [1, 2); v and c small ramps.
pub fn case_args(case: &str, n: usize) -> Vec<(&'static str, DynArray)> {
    let rows = (n / COLS).max(1);
    let grid = || {
        let x = Array1::linspace(-5.0, 5.0, rows * COLS);
        DynArray::from(
            x.into_shape_with_order((rows, COLS))
                .expect("rows * COLS elements"),
        )
    };
    let ramp = |k: usize| Array1::from_iter((0..k).map(|i| (i % 97) as f64 * 0.01));
    match case {
        "rowbcast" => vec![("x", grid()), ("v", ramp(COLS).into())],
        "colbcast" => vec![
            ("x", grid()),
            (
                "c",
                ramp(rows)
                    .into_shape_with_order((rows, 1))
                    .expect("rows")
                    .into(),
            ),
        ],
        "softmax" | "standardize" => vec![("x", grid())],
        "gauss32" => vec![("x", Array1::linspace(-5.0f32, 5.0, n).into())],
        "relu_mix" => {
            let ins = case_inputs("two", n);
            let a = ins[0].mapv(|v| v as f32);
            vec![("x", a.into()), ("b", ins[1].clone().into())]
        }
        "add_u8" => {
            // Pixel-like ramps; their sum wraps around 255 as NumPy's uint8 does.
            let a = Array1::from_iter((0..n).map(|i| (i % 251) as u8));
            let b = Array1::from_iter((0..n).map(|i| (i * 7 % 256) as u8));
            vec![("x", a.into()), ("b", b.into())]
        }
        _ => {
            let ins = case_inputs(case, n);
            let mut v: Vec<(&'static str, DynArray)> = vec![("x", ins[0].clone().into())];
            if let Some(b) = ins.get(1) {
                v.push(("b", b.clone().into()));
            }
            v
        }
    }
}

/// Inputs of a case: x = linspace(-5, 5, n); b in [1, 2).
pub fn case_inputs(case: &str, n: usize) -> Vec<Array1<f64>> {
    let x = Array1::linspace(-5.0, 5.0, n);
    if case == "two" {
        let b = Array1::from_iter((0..n).map(|i| 1.0 + (i % 1000) as f64 / 1000.0));
        vec![x, b]
    } else {
        vec![x]
    }
}

/// NumPy's way: one operator at a time, a fresh temporary each.
pub fn ndarray_eager(case: &str, ins: &[Array1<f64>]) -> DynArray {
    let x = &ins[0];
    match case {
        "copy" => x.to_owned().into(),
        "add1" => (x + 1.0).into(),
        "poly" => {
            let t1 = x * 5.0;
            let t2 = &t1 + 4.0;
            let t3 = &t2 * x;
            (&t3 + 1.0).into()
        }
        "gauss" => {
            let c = 1.0 / (SIGMA * (2.0 * std::f64::consts::PI).sqrt());
            let t1 = x - MU;
            let t2 = &t1 * &t1;
            let t3 = t2.mapv(|v| -v);
            let t4 = &t3 / (2.0 * SIGMA * SIGMA);
            let t5 = t4.mapv(f64::exp);
            (&t5 * c).into()
        }
        "sumsq" => {
            let t = x * x;
            ndarray::arr0(t.sum()).into()
        }
        _ => {
            let b = &ins[1];
            let t1 = x * 2.0;
            let t2 = b * 3.0;
            let t3 = &t2 * b;
            let t4 = &t1 + &t3;
            let t5 = x / b;
            (&t4 - &t5).into()
        }
    }
}

/// What a careful Rust programmer writes: one fused `Zip` loop (single thread).
pub fn ndarray_zip(case: &str, ins: &[Array1<f64>]) -> DynArray {
    let x = &ins[0];
    let mut out = Array1::<f64>::zeros(0);
    let mut fill = |f: &dyn Fn(f64) -> f64| {
        out = Zip::from(x).map_collect(|&v| f(v));
    };
    match case {
        "copy" => fill(&|v| v),
        "add1" => fill(&|v| v + 1.0),
        "poly" => fill(&|v| (5.0 * v + 4.0) * v + 1.0),
        "gauss" => {
            let c = 1.0 / (SIGMA * (2.0 * std::f64::consts::PI).sqrt());
            let d = 2.0 * SIGMA * SIGMA;
            fill(&|v| c * (-(v - MU) * (v - MU) / d).exp())
        }
        "sumsq" => return ndarray::arr0(x.fold(0.0, |acc, v| acc + v * v)).into(),
        _ => {
            let b = &ins[1];
            return Zip::from(x)
                .and(b)
                .map_collect(|&a, &b| 2.0 * a + 3.0 * b * b - a / b)
                .into();
        }
    }
    out.into()
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct Record {
    pub case: String,
    pub n: usize,
    pub implementation: String,
    pub device: String,
    pub threads: usize,
    pub median_s: f64,
    /// Bytes a fused kernel must move (the GB/s numerator, the same for every implementation).
    pub bytes: u64,
    /// On `auto` records of `--placement`: the device Auto chose (`cpu`, `gpu:0`).
    pub chosen: Option<String>,
}

impl Record {
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 / self.median_s / 1e9
    }
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "case": self.case, "n": self.n, "impl": self.implementation, "device": self.device,
            "threads": self.threads, "median_s": self.median_s, "bytes": self.bytes,
            "gbps": self.gbps(),
        });
        if let (Some(c), Some(o)) = (&self.chosen, v.as_object_mut()) {
            o.insert("chosen".into(), c.clone().into());
        }
        v
    }
}

/// Bench configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub cases: Vec<String>,
    pub sizes: Vec<usize>,
    pub impls: Vec<String>,
    /// Device of fusebox's implementations (fused, unfused, copy); ndarray's run on the CPU.
    pub device: Device,
    /// CPU threads for fusebox (0 = all cores).
    pub threads: usize,
    /// Wall-time budget per (case, size), split across rounds.
    pub budget: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cases: CASES.iter().map(|s| s.to_string()).collect(),
            sizes: vec![1_000, 10_000, 100_000, 1_000_000, 10_000_000],
            impls: IMPLS.iter().map(|s| s.to_string()).collect(),
            device: Device::Cpu,
            threads: 0,
            budget: Duration::from_millis(1500),
        }
    }
}

fn call(f: &Compiled, ins: &[Array1<f64>]) -> Result<DynArray> {
    let views: Vec<ArgView<'_>> = ins.iter().map(|a| a.view().into()).collect();
    f.call(&views)
}

/// The arguments of `f` (by its parameter names) among `args`.
fn views_for<'a>(f: &Compiled, args: &'a [(&str, DynArray)]) -> Result<Vec<ArgView<'a>>> {
    f.params()
        .iter()
        .map(|(name, _)| {
            args.iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a.view())
                .ok_or_else(|| Error::UnknownName {
                    name: name.clone(),
                    known: args.iter().map(|(n, _)| n.to_string()).collect(),
                })
        })
        .collect()
}

/// The implementations of `cfg` that apply to `case`.
fn impls_for<'c>(cfg: &'c Config, case: &str) -> Vec<&'c str> {
    cfg.impls
        .iter()
        .map(String::as_str)
        .filter(|i| IMPLS.contains(i))
        .filter(|i| !i.starts_with("ndarray") || FLAT_CASES.contains(&case))
        .collect()
}

/// Run the matrix; records come in (case, size, implementation) order.
pub fn run(cfg: &Config) -> Result<Vec<Record>> {
    let fused = Session::with_options(Options::default().with_threads(cfg.threads));
    let unfused = Session::with_options(
        Options::default()
            .with_threads(cfg.threads)
            .with_optimize(false),
    );
    let kernels = Session::with_options(
        Options::default()
            .with_threads(cfg.threads)
            .with_row_form(false),
    );
    let threads = fused_threads(cfg.threads);
    let copy_f = fused.compile(&case_expr("copy")?)?;
    let mut out = vec![];
    for case in &cfg.cases {
        let e = case_expr(case)?;
        let (ff, uf, kf) = (
            fused.compile(&e)?,
            unfused.compile(&e)?,
            kernels.compile(&e)?,
        );
        for &n in &cfg.sizes {
            let impls = impls_for(cfg, case);
            let flat = FLAT_CASES.contains(&case.as_str());
            let ins = if flat { case_inputs(case, n) } else { vec![] };
            let args = case_args(case, n);
            let views = views_for(&ff, &args)?;
            let copy_in = [Array1::linspace(-5.0, 5.0, copy_len(case, n))];
            // Preallocated outputs (written once here, so their pages are mapped).
            let mut into_out = ff.call(&views)?;
            let mut copy_out = call(&copy_f, &copy_in)?;
            let mut run_one = |imp: &str| -> Result<Duration> {
                let t = Instant::now();
                let r = match imp {
                    "fused" => Some(ff.call(&views)?),
                    "fused-into" => {
                        ff.call_into(&views, into_out.view_mut())?;
                        None
                    }
                    "kernels-into" => {
                        kf.call_into(&views, into_out.view_mut())?;
                        None
                    }
                    "unfused" => Some(uf.call(&views)?),
                    "ndarray-eager" => Some(ndarray_eager(case, &ins)),
                    "ndarray-zip" => Some(ndarray_zip(case, &ins)),
                    "copy-into" => {
                        copy_f.call_into(&[copy_in[0].view().into()], copy_out.view_mut())?;
                        None
                    }
                    _ => Some(call(&copy_f, &copy_in)?),
                };
                let d = t.elapsed();
                drop(r);
                Ok(d)
            };
            // Warm-up round, which also sizes the number of rounds to the budget.
            let mut round = Duration::ZERO;
            for imp in &impls {
                round += run_one(imp)?;
            }
            let rounds = (cfg.budget.as_secs_f64() / round.as_secs_f64().max(1e-9))
                .clamp(3.0, 2000.0) as usize;
            let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); impls.len()];
            for _ in 0..rounds {
                for (k, imp) in impls.iter().enumerate() {
                    times[k].push(run_one(imp)?.as_secs_f64());
                }
            }
            for (k, imp) in impls.iter().enumerate() {
                let mut t = std::mem::take(&mut times[k]);
                t.sort_by(f64::total_cmp);
                out.push(Record {
                    case: case.clone(),
                    n,
                    implementation: imp.to_string(),
                    device: "cpu".into(),
                    threads: if imp.starts_with("ndarray") {
                        1
                    } else {
                        threads
                    },
                    median_s: t[t.len() / 2],
                    bytes: if imp.starts_with("copy") {
                        16 * copy_len(case, n) as u64
                    } else {
                        case_bytes_per_elem(case) * n as u64
                    },
                    chosen: None,
                });
            }
        }
    }
    Ok(out)
}

/// `fusebox bench --placement`: the fused implementation of each case at each size on the CPU,
/// on GPU `gpu` (skipped when it cannot be opened) and on `Device::Auto`, interleaved like
/// [`run`]. Every call starts from host arrays and returns a host array, so the GPU's and
/// Auto's times include moving the data, as a user pays it. Auto's records name the device it
/// chose in `chosen`.
pub fn run_placement(cfg: &Config, gpu: usize) -> Result<Vec<Record>> {
    let session = |device| {
        Session::with_options(
            Options::default()
                .with_device(device)
                .with_threads(cfg.threads),
        )
    };
    let mut devices = vec![("cpu", session(Device::Cpu))];
    match crate::gpu::GpuBackend::new(gpu) {
        Ok(_) => devices.push(("gpu", session(Device::Gpu(gpu)))),
        Err(e) => tracing::warn!("fusebox bench --placement: no GPU ({e}); cpu and auto only"),
    }
    devices.push(("auto", session(Device::Auto)));
    let threads = fused_threads(cfg.threads);
    let mut out = vec![];
    for case in &cfg.cases {
        let e = case_expr(case)?;
        let fs = devices
            .iter()
            .map(|(_, s)| s.compile(&e))
            .collect::<Result<Vec<_>>>()?;
        for &n in &cfg.sizes {
            let args = case_args(case, n);
            let views = views_for(&fs[0], &args)?;
            let chosen = fs[fs.len() - 1].placement(&views)?;
            let run_one = |f: &Compiled| -> Result<Duration> {
                let t = Instant::now();
                let r = f.call(&views)?;
                let d = t.elapsed();
                drop(r);
                Ok(d)
            };
            for f in &fs {
                run_one(f)?; // warm-up: first-call costs (compilation, uploads of constants)
            }
            // Each device gets an equal share of the budget, so a fast device collects many
            // more samples than a slow one (Auto's regret compares two fast medians; a few
            // samples of a slow GPU suffice to show it is slower): rounds go on while some
            // device has fewer than 3 samples or has spent less than its share.
            let share = cfg.budget.as_secs_f64() / fs.len() as f64;
            let mut spent = vec![0.0f64; fs.len()];
            let mut times: Vec<Vec<f64>> = vec![vec![]; fs.len()];
            let needs = |k: usize, times: &[Vec<f64>], spent: &[f64]| {
                times[k].len() < 3 || (spent[k] < share && times[k].len() < 2000)
            };
            // The order is shuffled every round: a device that runs right after the GPU may
            // find the driver's threads (on lavapipe: the CPU's own cores) still busy, and each
            // device should meet that equally often (a rotation would not do: it keeps the
            // cyclic order, so one device would nearly always follow the GPU).
            let mut order: Vec<usize> = (0..fs.len()).collect();
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
            while (0..fs.len()).any(|k| needs(k, &times, &spent)) {
                for i in (1..order.len()).rev() {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    order.swap(i, (seed % (i as u64 + 1)) as usize);
                }
                for &k in &order {
                    if needs(k, &times, &spent) {
                        let t = run_one(&fs[k])?.as_secs_f64();
                        spent[k] += t;
                        times[k].push(t);
                    }
                }
            }
            for (k, (name, _)) in devices.iter().enumerate() {
                let mut t = std::mem::take(&mut times[k]);
                t.sort_by(f64::total_cmp);
                out.push(Record {
                    case: case.clone(),
                    n,
                    implementation: "fused".into(),
                    device: name.to_string(),
                    threads: if *name == "cpu" || (*name == "auto" && chosen == Device::Cpu) {
                        threads
                    } else {
                        1
                    },
                    median_s: t[t.len() / 2],
                    bytes: case_bytes_per_elem(case) * n as u64,
                    chosen: (*name == "auto").then(|| chosen.to_string()),
                });
            }
        }
    }
    Ok(out)
}

/// The table of [`run_placement`]: per case and size, each device's median time, Auto's
/// choice, and its regret (Auto's time over the fastest device's, minus 1).
pub fn placement_table(records: &[Record]) -> String {
    let mut s = format!(
        "{:<6} {:>10} {:>12} {:>12} {:>12} {:<8} {:>8}\n",
        "case", "n", "cpu", "gpu", "auto", "chosen", "regret"
    );
    let mut keys: Vec<(&str, usize)> = vec![];
    for r in records {
        if !keys.contains(&(r.case.as_str(), r.n)) {
            keys.push((r.case.as_str(), r.n));
        }
    }
    for (case, n) in keys {
        let get = |d: &str| {
            records
                .iter()
                .find(|r| r.case == case && r.n == n && r.device == d)
        };
        let t = |d: &str| get(d).map(|r| r.median_s);
        let cell = |d: &str| t(d).map(fmt_time).unwrap_or_else(|| "-".into());
        let best = [t("cpu"), t("gpu")]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        let regret = t("auto")
            .map(|a| format!("{:+.1}%", 100.0 * (a / best - 1.0)))
            .unwrap_or_default();
        let chosen = get("auto")
            .and_then(|r| r.chosen.clone())
            .unwrap_or_default();
        s.push_str(&format!(
            "{case:<6} {n:>10} {:>12} {:>12} {:>12} {chosen:<8} {regret:>8}\n",
            cell("cpu"),
            cell("gpu"),
            cell("auto")
        ));
    }
    s
}

fn fused_threads(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads
    }
}

/// A text table: one row per (case, n, implementation): median time, GB/s (the case's bytes
/// over the time) and the ratio to `copy` and to `copy-into` of the same run and size.
pub fn table(records: &[Record]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<11} {:>10} {:<14} {:>12} {:>9} {:>8} {:>11}\n",
        "case", "n", "impl", "median", "GB/s", "x copy", "x copy-into"
    ));
    for r in records {
        let ratio = |base: &str| {
            records
                .iter()
                .find(|c| c.case == r.case && c.n == r.n && c.implementation == base)
                .map(|c| format!("{:.2}", r.median_s / c.median_s))
                .unwrap_or_default()
        };
        s.push_str(&format!(
            "{:<11} {:>10} {:<14} {:>12} {:>9.2} {:>8} {:>11}\n",
            r.case,
            r.n,
            r.implementation,
            fmt_time(r.median_s),
            r.gbps(),
            ratio("copy"),
            ratio("copy-into"),
        ));
    }
    s
}

/// Seconds in a readable unit.
pub fn fmt_time(t: f64) -> String {
    if t >= 1.0 {
        format!("{t:.3} s")
    } else if t >= 1e-3 {
        format!("{:.3} ms", t * 1e3)
    } else {
        format!("{:.3} us", t * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_matches_the_reference_evaluator_fresh_and_into() {
        let s = Session::new();
        for case in CASES {
            for n in [1000, 3000] {
                let f = s.compile(&case_expr(case).unwrap()).unwrap();
                let args = case_args(case, n);
                let views = views_for(&f, &args).unwrap();
                let map: std::collections::HashMap<String, DynArray> = args
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect();
                let want = crate::reference::evaluate(f.expr(), &map).unwrap();
                let fresh = f.call(&views).unwrap();
                let mut into = match &fresh {
                    DynArray::F64(a) => DynArray::from(a.mapv(|_| f64::NAN)),
                    DynArray::F32(a) => DynArray::from(a.mapv(|_| f32::NAN)),
                    DynArray::U8(a) => DynArray::from(a.mapv(|v| !v)),
                    other => panic!("{case}: a result of dtype {}", other.dtype()),
                };
                f.call_into(&views, into.view_mut()).unwrap();
                for got in [fresh, into] {
                    assert_eq!(got.shape(), want.shape(), "{case}");
                    let (g, w) = (got.view(), want.view());
                    let (g, w) = (
                        g.try_to_dyn_array()
                            .unwrap()
                            .reshaped(&[got.len()])
                            .unwrap(),
                        w.try_to_dyn_array()
                            .unwrap()
                            .reshaped(&[want.len()])
                            .unwrap(),
                    );
                    let close = match (g, w) {
                        (DynArray::F64(g), DynArray::F64(w)) => {
                            g.iter().zip(w.iter()).all(|(a, b)| {
                                (a.is_nan() && b.is_nan())
                                    || (a - b).abs() <= 1e-12 * (1.0 + b.abs())
                            })
                        }
                        (DynArray::F32(g), DynArray::F32(w)) => {
                            g.iter().zip(w.iter()).all(|(a, b)| {
                                (a.is_nan() && b.is_nan())
                                    || (a - b).abs() <= 1e-5 * (1.0 + b.abs())
                            })
                        }
                        (DynArray::U8(g), DynArray::U8(w)) => g == w,
                        _ => false,
                    };
                    assert!(close, "{case} at {n}");
                }
            }
        }
    }

    #[test]
    fn every_implementation_computes_the_same_thing() {
        let s = Session::new();
        for case in FLAT_CASES {
            let ins = case_inputs(case, 1001);
            let f = s.compile(&case_expr(case).unwrap()).unwrap();
            let ours = call(&f, &ins).unwrap().into_f64().unwrap();
            for other in [ndarray_eager(case, &ins), ndarray_zip(case, &ins)] {
                let o = other.into_f64().unwrap();
                for (a, b) in ours.iter().zip(o.iter()) {
                    assert!(
                        (a - b).abs() <= 1e-12 * (1.0 + b.abs()) * 1001.0,
                        "{case}: {a} {b}"
                    );
                }
            }
        }
    }
}
