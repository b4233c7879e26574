//! The benchmark matrix behind `fusebox bench` and `benches/`: the cases of BENCHMARKS.md
//! (copy, add1, poly, gauss, sumsq, two) at any size, each run by every implementation
//! (fusebox fused and unfused, ndarray eager with temporaries as NumPy does, a hand-written
//! fused `ndarray::Zip` loop, and fusebox's copy kernel as the memory-bus baseline).
//!
//! Implementations run interleaved (one call of each per round, median over rounds), so the
//! ratios within one run are fair on a noisy machine.
use crate::array::{ArgView, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::options::{Device, Options};
use crate::session::{Compiled, Session};
use ndarray::{Array1, Zip};
use std::time::{Duration, Instant};

/// The benchmark cases.
pub const CASES: [&str; 6] = ["copy", "add1", "poly", "gauss", "sumsq", "two"];
/// The implementations.
pub const IMPLS: [&str; 5] = ["fused", "unfused", "ndarray-eager", "ndarray-zip", "copy"];

const MU: f64 = -1.33;
const SIGMA: f64 = 1.25;

/// The expression of a case over symbols `x` (and `b` for `two`, where `x` plays `a`).
pub fn case_expr(case: &str) -> Result<Expr> {
    let x = Expr::symbol("x", DType::F64, &[0]);
    let b = Expr::symbol("b", DType::F64, &[0]);
    Ok(match case {
        "copy" => x,
        "add1" => &x + 1.0,
        "poly" => (5.0 * &x + 4.0) * &x + 1.0,
        "gauss" => {
            1.0 / (SIGMA * (2.0 * std::f64::consts::PI).sqrt())
                * (-(&x - MU).pow(2.0) / (2.0 * SIGMA * SIGMA)).exp()
        }
        "sumsq" => (&x * &x).sum(),
        "two" => 2.0 * &x + 3.0 * &b * &b - &x / &b,
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
        "sumsq" => 8,
        "two" => 24,
        _ => 16,
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

/// Run the matrix; records come in (case, size, implementation) order.
pub fn run(cfg: &Config) -> Result<Vec<Record>> {
    let fused = Session::with_options(Options::default().with_threads(cfg.threads));
    let unfused = Session::with_options(
        Options::default()
            .with_threads(cfg.threads)
            .with_optimize(false),
    );
    let threads = fused_threads(cfg.threads);
    let copy_f = fused.compile(&case_expr("copy")?)?;
    let mut out = vec![];
    for case in &cfg.cases {
        let e = case_expr(case)?;
        let (ff, uf) = (fused.compile(&e)?, unfused.compile(&e)?);
        for &n in &cfg.sizes {
            let ins = case_inputs(case, n);
            let impls: Vec<&str> = cfg
                .impls
                .iter()
                .map(String::as_str)
                .filter(|i| IMPLS.contains(i))
                .collect();
            let run_one = |imp: &str| -> Result<Duration> {
                let t = Instant::now();
                let r = match imp {
                    "fused" => call(&ff, &ins)?,
                    "unfused" => call(&uf, &ins)?,
                    "ndarray-eager" => ndarray_eager(case, &ins),
                    "ndarray-zip" => ndarray_zip(case, &ins),
                    _ => call(&copy_f, &ins[..1])?,
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
                    bytes: case_bytes_per_elem(case) * n as u64,
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
            let ins = case_inputs(case, n);
            let views: Vec<ArgView<'_>> = ins.iter().map(|a| a.view().into()).collect();
            let chosen = fs[fs.len() - 1].placement(&views)?;
            let run_one = |f: &Compiled| -> Result<Duration> {
                let t = Instant::now();
                let r = call(f, &ins)?;
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

/// A text table: one row per (case, n), one column per implementation (median time), then
/// GB/s of the fused kernel and each implementation's ratio to `copy`.
pub fn table(records: &[Record]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<6} {:>10} {:<14} {:>12} {:>9} {:>9}\n",
        "case", "n", "impl", "median", "GB/s", "x copy"
    ));
    for r in records {
        let copy = records
            .iter()
            .find(|c| c.case == r.case && c.n == r.n && c.implementation == "copy")
            .map(|c| c.median_s);
        let ratio = copy
            .map(|c| format!("{:.2}", r.median_s / c))
            .unwrap_or_default();
        s.push_str(&format!(
            "{:<6} {:>10} {:<14} {:>12} {:>9.2} {:>9}\n",
            r.case,
            r.n,
            r.implementation,
            fmt_time(r.median_s),
            r.gbps(),
            ratio
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
    fn every_implementation_computes_the_same_thing() {
        let s = Session::new();
        for case in CASES {
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
