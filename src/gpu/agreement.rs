//! CPU-GPU agreement of the math functions (tests only): every function the kernel-IR math
//! library implements ([`crate::mathlib`]), in f32 and f64, run by the CPU JIT (its own
//! expansions for [`crate::mathlib::Target::cpu`], libm where it keeps libm) and by the GPU
//! (the expansions for [`crate::mathlib::Target::WGSL`]) on the arguments of the mathlib
//! accuracy tests plus random bit patterns ([`args`]). `cpu_gpu_agreement` prints the table of
//! the module docs of [`super::wgsl`] with
//! `--nocapture` and asserts its bounds: at most 1 ULP between the two devices for every
//! function, and the GPU within the mathlib's own bound of glibc; `arithmetic_is_bitwise`
//! asserts that `+ - * /` and polynomial code agree bit for bit.
//!
//! Without a GPU adapter the tests print why and pass, unless `FUSEBOX_REQUIRE_GPU=1` (CI, on
//! lavapipe), which makes that a failure.
use super::GpuBackend;
use crate::array::DynArray;
use crate::cpu::CpuBackend;
use crate::dtype::DType;
use crate::kir::{Const, Inst, Kernel, KernelBuilder, Output, Value};
use crate::mathlib::accuracy::{self as acc, F};
use crate::mathlib::{BINARY_ULP_BOUNDS, ULP_BOUNDS};
use crate::ops::BinaryOp;
use ndarray::Array1;

/// Random bit patterns added to each function's domain (every exponent, NaNs and infinities).
const RANDOM_ARGS: usize = 50_000;

/// The GPU to compare with, or `None` (with the reason printed) where there is none.
fn gpu() -> Option<GpuBackend> {
    let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
    match GpuBackend::new(0) {
        Ok(g) => Some(g),
        Err(e) if required => panic!("FUSEBOX_REQUIRE_GPU=1 but no usable GPU adapter: {e}"),
        Err(e) => {
            println!("skipping the CPU-GPU agreement test: {e}");
            None
        }
    }
}

fn supported(g: &GpuBackend, t: DType) -> bool {
    t != DType::F64 || (g.info().f64 && g.info().i64)
}

/// The arguments of a function, `(xs, ys)` (`ys` unused for unary functions): the domain of
/// the mathlib accuracy tests (`accuracy::domain` or, for the functions of `mod.rs`'s
/// `ulp_table`, `accuracy::dense_domain`), the special values, and [`RANDOM_ARGS`] random bit
/// patterns.
fn args(f: F, dt: DType) -> (Vec<f64>, Vec<f64>) {
    let f64 = dt == DType::F64;
    match f {
        F::U(op) => {
            let mut rng = acc::Rng(0x5851F42D4C957F2D ^ op as u64);
            let mut v = acc::specials();
            if acc::NEW_UNARY.contains(&op) {
                v.extend(acc::domain(op, dt));
            } else {
                v.extend(acc::dense_domain(op, dt));
            }
            v.extend((0..RANDOM_ARGS).map(|_| rng.bits(f64)));
            let v = acc::of_dtype(dt, v);
            (v.clone(), v)
        }
        F::B(op) => {
            let mut rng = acc::Rng(0x5851F42D4C957F2D ^ op as u64);
            let (mut xs, mut ys) = acc::binary_domain(op, dt);
            for _ in 0..RANDOM_ARGS {
                xs.push(rng.bits(f64));
                ys.push(rng.bits(f64));
            }
            (acc::of_dtype(dt, xs), acc::of_dtype(dt, ys))
        }
    }
}

fn array(dt: DType, xs: &[f64]) -> DynArray {
    match dt {
        DType::F64 => Array1::from(xs.to_vec()).into(),
        _ => Array1::from(xs.iter().map(|v| *v as f32).collect::<Vec<_>>()).into(),
    }
}

fn floats(a: DynArray) -> Vec<f64> {
    match a {
        DynArray::F64(a) => a.iter().copied().collect(),
        DynArray::F32(a) => a.iter().map(|v| *v as f64).collect(),
        _ => panic!("not a float array"),
    }
}

/// `k` on the CPU JIT and on the GPU, on `n` elements of the given inputs.
fn both(cpu: &CpuBackend, g: &GpuBackend, k: &Kernel, ins: &[DynArray]) -> (Vec<f64>, Vec<f64>) {
    let views: Vec<_> = ins.iter().map(|a| a.view()).collect();
    let n = ins[0].len();
    let c = cpu.compile(k).unwrap_or_else(|e| panic!("CPU: {e}\n{k}"));
    let on_cpu = floats(cpu.run(&c, &views, &[n]).unwrap());
    let gk = g.compile(k).unwrap_or_else(|e| panic!("GPU: {e}\n{k}"));
    let on_gpu = floats(g.run(&gk, &views, &[n]).unwrap());
    (on_cpu, on_gpu)
}

/// Bitwise agreement: the same bits, or both NaN with the same sign.
fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
        || (a.is_nan() && b.is_nan() && a.is_sign_negative() == b.is_sign_negative())
}

/// One row of the table.
struct Row {
    f: F,
    dt: DType,
    n: usize,
    /// Max ULP between the devices, how many arguments give different values (other bits;
    /// NaNs aside), and how many give NaNs of different signs.
    cpu_gpu: u64,
    differ: usize,
    nan_sign: usize,
    worst: (f64, f64, f64, f64),
    /// Max ULP of the GPU from glibc (`accuracy::truth`) and the mathlib's bound.
    gpu_glibc: u64,
    bound: u64,
}

fn name(f: F) -> &'static str {
    match f {
        F::U(op) => op.name(),
        F::B(op) => op.name(),
    }
}

fn measure(cpu: &CpuBackend, g: &GpuBackend, f: F, dt: DType, bound: u64) -> Row {
    let (xs, ys) = args(f, dt);
    let mut ins = vec![array(dt, &xs)];
    if let F::B(_) = f {
        ins.push(array(dt, &ys));
    }
    let (c, gv) = both(cpu, g, &acc::raw_kernel(f, dt), &ins);
    let f32 = dt == DType::F32;
    let mut row = Row {
        f,
        dt,
        n: xs.len(),
        cpu_gpu: 0,
        differ: 0,
        nan_sign: 0,
        worst: (0.0, 0.0, 0.0, 0.0),
        gpu_glibc: 0,
        bound,
    };
    for i in 0..xs.len() {
        let y = if let F::B(_) = f { ys[i] } else { 0.0 };
        if !same_bits(c[i], gv[i]) {
            if c[i].is_nan() && gv[i].is_nan() {
                row.nan_sign += 1;
            } else {
                row.differ += 1;
            }
        }
        let u = acc::ulp(c[i], gv[i], f32);
        if u > row.cpu_gpu {
            row.cpu_gpu = u;
            row.worst = (xs[i], y, c[i], gv[i]);
        }
        row.gpu_glibc = row
            .gpu_glibc
            .max(acc::ulp(gv[i], acc::truth(f, dt, xs[i], y), f32));
    }
    row
}

/// Every math function in f32 and f64, CPU JIT against GPU and GPU against glibc; prints the
/// table (`--nocapture`) and asserts 1 ULP between the devices and the mathlib's bounds.
#[test]
fn cpu_gpu_agreement() {
    let Some(g) = gpu() else { return };
    let cpu = CpuBackend::new(1).unwrap();
    let mut fs: Vec<(F, DType, u64)> = ULP_BOUNDS.iter().map(|b| (F::U(b.0), b.1, b.2)).collect();
    fs.extend(BINARY_ULP_BOUNDS.iter().map(|b| (F::B(b.0), b.1, b.2)));
    let start = std::time::Instant::now();
    let rows: Vec<Row> = fs
        .into_iter()
        .filter(|(_, dt, _)| supported(&g, *dt))
        .map(|(f, dt, bound)| measure(&cpu, &g, f, dt, bound))
        .collect();
    let mut table = String::from(
        "| function | dtype | args | CPU-GPU max ULP | values differing | NaN signs differing | GPU-glibc max ULP (bound) |\n|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        table += &format!(
            "| `{}` | {} | {} | {} | {} | {} | {} ({}) |\n",
            name(r.f),
            r.dt.short(),
            r.n,
            r.cpu_gpu,
            r.differ,
            r.nan_sign,
            r.gpu_glibc,
            r.bound
        );
    }
    println!(
        "CPU JIT vs {} ({}), {:.1} s:\n{table}",
        g.info().name,
        g.info().backend,
        start.elapsed().as_secs_f64()
    );
    for r in &rows {
        let (x, y, c, gv) = r.worst;
        assert!(
            r.cpu_gpu <= 1,
            "{} {}: CPU and GPU {} ULP apart at ({x:e}, {y:e}): {c:e} vs {gv:e}",
            name(r.f),
            r.dt,
            r.cpu_gpu
        );
        assert!(
            r.gpu_glibc <= r.bound,
            "{} {}: the GPU is {} ULP from glibc (bound {})",
            name(r.f),
            r.dt,
            r.gpu_glibc,
            r.bound
        );
    }
}

/// `+ - * /` of every pair of special values and of random bit patterns, and polynomials in
/// Horner's and Estrin's forms: the CPU's bits on the GPU (NaNs of the same sign).
#[test]
fn arithmetic_is_bitwise() {
    let Some(g) = gpu() else { return };
    let cpu = CpuBackend::new(1).unwrap();
    for dt in [DType::F64, DType::F32]
        .into_iter()
        .filter(|t| supported(&g, *t))
    {
        let f64 = dt == DType::F64;
        let sp = acc::specials();
        let (mut xs, mut ys) = (vec![], vec![]);
        for &a in &sp {
            for &b in &sp {
                xs.push(a);
                ys.push(b);
            }
        }
        let mut rng = acc::Rng(0x2545F4914F6CDD1D);
        for _ in 0..20_000 {
            xs.push(rng.bits(f64));
            ys.push(rng.bits(f64));
        }
        for _ in 0..20_000 {
            xs.push(rng.uniform(-4.0, 4.0));
            ys.push(rng.uniform(-4.0, 4.0));
        }
        let (xs, ys) = (acc::of_dtype(dt, xs), acc::of_dtype(dt, ys));
        let ins = [array(dt, &xs), array(dt, &ys)];
        let mut kernels: Vec<(String, Kernel)> =
            [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div]
                .into_iter()
                .map(|op| {
                    let mut b = KernelBuilder::new();
                    let (x, y) = load2(&mut b, dt);
                    let v = b.push(Inst::Binary { op, lhs: x, rhs: y }, dt);
                    (op.name().to_string(), b.finish(Output::Store { value: v }))
                })
                .collect();
        kernels.push(("poly".into(), poly(dt, false)));
        kernels.push(("estrin".into(), poly(dt, true)));
        for (what, k) in kernels {
            let (c, gv) = both(&cpu, &g, &k, &ins);
            for i in 0..xs.len() {
                assert!(
                    same_bits(c[i], gv[i]),
                    "{what} {dt}({:e}, {:e}): CPU {:e} ({:#x}), GPU {:e} ({:#x})",
                    xs[i],
                    ys[i],
                    c[i],
                    c[i].to_bits(),
                    gv[i],
                    gv[i].to_bits()
                );
            }
        }
    }
}

fn load2(b: &mut KernelBuilder, dt: DType) -> (Value, Value) {
    let i = b.input(dt);
    let j = b.input(dt);
    (
        b.push(Inst::Load { input: i }, dt),
        b.push(Inst::Load { input: j }, dt),
    )
}

/// `y * p(x)` with `p` of degree 8 (the exp polynomial's coefficients) in Horner's form, or in
/// Estrin's (`x^2`, `x^4` and pairs) when `estrin`; the product with `y` makes the kernel use
/// both inputs.
fn poly(dt: DType, estrin: bool) -> Kernel {
    let cs = [
        1.0,
        1.0,
        0.5,
        0.16666666666666666,
        0.041666666666666664,
        0.008333333333333333,
        0.001388888888888889,
        0.0001984126984126984,
        2.48015873015873e-05,
    ];
    let mut b = KernelBuilder::new();
    let (x, y) = load2(&mut b, dt);
    let c = |b: &mut KernelBuilder, v: f64| {
        let k = if dt == DType::F64 {
            Const::F64(v)
        } else {
            Const::F32(v as f32)
        };
        b.push(Inst::Const(k), dt)
    };
    let bin = |b: &mut KernelBuilder, op, lhs, rhs| b.push(Inst::Binary { op, lhs, rhs }, dt);
    let p = if estrin {
        let x2 = bin(&mut b, BinaryOp::Mul, x, x);
        let x4 = bin(&mut b, BinaryOp::Mul, x2, x2);
        let pairs: Vec<Value> = cs
            .chunks(2)
            .map(|p| {
                let c0 = c(&mut b, p[0]);
                match p.get(1) {
                    Some(&c1) => {
                        let c1 = c(&mut b, c1);
                        let t = bin(&mut b, BinaryOp::Mul, c1, x);
                        bin(&mut b, BinaryOp::Add, c0, t)
                    }
                    None => c0,
                }
            })
            .collect();
        let q0 = bin(&mut b, BinaryOp::Mul, pairs[1], x2);
        let q0 = bin(&mut b, BinaryOp::Add, pairs[0], q0);
        let q1 = bin(&mut b, BinaryOp::Mul, pairs[3], x2);
        let q1 = bin(&mut b, BinaryOp::Add, pairs[2], q1);
        let r = bin(&mut b, BinaryOp::Mul, q1, x4);
        let r = bin(&mut b, BinaryOp::Add, q0, r);
        let x8 = bin(&mut b, BinaryOp::Mul, x4, x4);
        let t = bin(&mut b, BinaryOp::Mul, pairs[4], x8);
        bin(&mut b, BinaryOp::Add, r, t)
    } else {
        let mut acc_v = c(&mut b, cs[8]);
        for &cv in cs[..8].iter().rev() {
            let t = bin(&mut b, BinaryOp::Mul, acc_v, x);
            let cc = c(&mut b, cv);
            acc_v = bin(&mut b, BinaryOp::Add, t, cc);
        }
        acc_v
    };
    let v = bin(&mut b, BinaryOp::Mul, y, p);
    b.finish(Output::Store { value: v })
}

/// The GPU computes what the lowered IR means: its results are the CPU JIT's on the same
/// expansions ([`crate::mathlib::Target::WGSL`]), bit for bit (NaNs of the same sign). Any
/// difference here is the driver's, not the algorithm's.
#[test]
fn gpu_runs_the_wgsl_expansions_exactly() {
    let Some(g) = gpu() else { return };
    let cpu = CpuBackend::new(1).unwrap();
    let mut fs: Vec<(F, DType)> = ULP_BOUNDS.iter().map(|b| (F::U(b.0), b.1)).collect();
    fs.extend(BINARY_ULP_BOUNDS.iter().map(|b| (F::B(b.0), b.1)));
    let mut bad = vec![];
    for (f, dt) in fs.into_iter().filter(|(_, dt)| supported(&g, *dt)) {
        let (xs, ys) = args(f, dt);
        let mut ins = vec![array(dt, &xs)];
        if let F::B(_) = f {
            ins.push(array(dt, &ys));
        }
        let raw = acc::raw_kernel(f, dt);
        let lowered = super::wgsl::lower(&raw).into_owned();
        let views: Vec<_> = ins.iter().map(|a| a.view()).collect();
        let c = cpu.compile(&lowered).unwrap();
        let on_cpu = floats(cpu.run(&c, &views, &[xs.len()]).unwrap());
        let gk = g.compile(&raw).unwrap();
        let on_gpu = floats(g.run(&gk, &views, &[xs.len()]).unwrap());
        let differ: Vec<usize> = (0..xs.len())
            .filter(|&i| !same_bits(on_cpu[i], on_gpu[i]))
            .collect();
        if let Some(&i) = differ.first() {
            bad.push(format!(
                "{} {dt}: {} of {} differ, first ({:e}, {:e}): JIT {:e}, GPU {:e}",
                name(f),
                differ.len(),
                xs.len(),
                xs[i],
                ys[i],
                on_cpu[i],
                on_gpu[i]
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
