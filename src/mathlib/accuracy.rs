//! Accuracy tests of the trigonometric, inverse and power expansions: the measured maximum ULP
//! error of every function against glibc over its whole domain (see the table in the module
//! docs of [`super`]), on the interpreter (the IR's meaning) and on the JIT (the code that
//! runs), with the rare-lane fallback exercised.
use super::*;
use crate::array::DynArray;
use ndarray::Array1;

/// A function under test: unary or binary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum F {
    U(UnaryOp),
    B(BinaryOp),
}

impl F {
    fn name(self) -> &'static str {
        match self {
            F::U(op) => op.name(),
            F::B(op) => op.name(),
        }
    }
    fn arity(self) -> usize {
        match self {
            F::U(_) => 1,
            F::B(_) => 2,
        }
    }
}

mod glibc {
    // glibc's functions where Rust's std computes its own (asinh, acosh, atanh in Rust), and
    // the f32 functions NumPy calls (for the sign of their NaNs).
    extern "C" {
        pub fn asinh(x: f64) -> f64;
        pub fn acosh(x: f64) -> f64;
        pub fn atanh(x: f64) -> f64;
        pub fn sinf(x: f32) -> f32;
        pub fn cosf(x: f32) -> f32;
        pub fn tanf(x: f32) -> f32;
        pub fn asinf(x: f32) -> f32;
        pub fn acosf(x: f32) -> f32;
        pub fn asinhf(x: f32) -> f32;
        pub fn acoshf(x: f32) -> f32;
        pub fn atanhf(x: f32) -> f32;
        pub fn atan2f(y: f32, x: f32) -> f32;
        pub fn hypotf(x: f32, y: f32) -> f32;
        pub fn powf(x: f32, y: f32) -> f32;
    }
}

/// glibc's f32 function, where it has one this file needs (the NaN signs of f32 results).
fn glibc_f32(f: F, x: f32, y: f32) -> Option<f32> {
    // SAFETY: glibc's libm (linked by std) defines these pure functions of floats.
    unsafe {
        Some(match f {
            F::U(UnaryOp::Sin) => glibc::sinf(x),
            F::U(UnaryOp::Cos) => glibc::cosf(x),
            F::U(UnaryOp::Tan) => glibc::tanf(x),
            F::U(UnaryOp::Arcsin) => glibc::asinf(x),
            F::U(UnaryOp::Arccos) => glibc::acosf(x),
            F::U(UnaryOp::Arcsinh) => glibc::asinhf(x),
            F::U(UnaryOp::Arccosh) => glibc::acoshf(x),
            F::U(UnaryOp::Arctanh) => glibc::atanhf(x),
            F::B(BinaryOp::Arctan2) => glibc::atan2f(x, y),
            F::B(BinaryOp::Hypot) => glibc::hypotf(x, y),
            F::B(BinaryOp::Pow) => glibc::powf(x, y),
            _ => return None,
        })
    }
}

/// glibc's f64 function (within 1 ULP of exact; most are correctly rounded).
pub(crate) fn glibc_f64(f: F, x: f64, y: f64) -> f64 {
    match f {
        F::U(op) => match op {
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Tan => x.tan(),
            UnaryOp::Arcsin => x.asin(),
            UnaryOp::Arccos => x.acos(),
            UnaryOp::Arctan => x.atan(),
            // SAFETY: glibc's libm (linked by std) defines these pure functions of one double.
            UnaryOp::Arcsinh => unsafe { glibc::asinh(x) },
            // SAFETY: as above.
            UnaryOp::Arccosh => unsafe { glibc::acosh(x) },
            // SAFETY: as above.
            UnaryOp::Arctanh => unsafe { glibc::atanh(x) },
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Log1p => x.ln_1p(),
            UnaryOp::Expm1 => x.exp_m1(),
            UnaryOp::Log2 => x.log2(),
            UnaryOp::Log10 => x.log10(),
            UnaryOp::Sinh => x.sinh(),
            UnaryOp::Cosh => x.cosh(),
            UnaryOp::Tanh => x.tanh(),
            _ => crate::semantics::unary_f64(op, x),
        },
        F::B(op) => match op {
            BinaryOp::Pow => x.powf(y),
            BinaryOp::Arctan2 => x.atan2(y),
            BinaryOp::Hypot => x.hypot(y),
            _ => crate::semantics::binary_f64(op, x, y),
        },
    }
}

/// The reference: glibc's f64 result, rounded to f32 for f32 (of the f32 operands); a NaN
/// result of f32 takes the sign (and payload) glibc's f32 function gives it.
pub(crate) fn truth(f: F, dt: DType, x: f64, y: f64) -> f64 {
    match dt {
        DType::F64 => glibc_f64(f, x, y),
        _ => {
            let (x, y) = (x as f32, y as f32);
            let r = glibc_f64(f, x as f64, y as f64) as f32 as f64;
            match glibc_f32(f, x, y) {
                Some(n) if r.is_nan() && n.is_nan() => n as f64,
                _ => r,
            }
        }
    }
}

/// `f` of loaded inputs of `dt`, stored, before any expansion.
pub(crate) fn raw_kernel(f: F, dt: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let args: Vec<Value> = (0..f.arity())
        .map(|_| {
            let i = b.input(dt);
            b.push(Inst::Load { input: i }, dt)
        })
        .collect();
    let y = match f {
        F::U(op) => b.push(Inst::Unary { op, arg: args[0] }, dt),
        F::B(op) => b.push(
            Inst::Binary {
                op,
                lhs: args[0],
                rhs: args[1],
            },
            dt,
        ),
    };
    b.finish(Output::Store { value: y })
}

fn kernel(f: F, dt: DType) -> Kernel {
    kernel_for(f, dt, Target::host())
}

/// `f` expanded for `target`, verified, with no call of `f` left.
pub(crate) fn kernel_for(f: F, dt: DType, target: Target) -> Kernel {
    let k = expand_all_for(&raw_kernel(f, dt), target);
    k.verify().unwrap();
    assert!(
        !k.to_string().contains(&format!("{}.", f.name())),
        "expanded:\n{k}"
    );
    k
}

fn array(dt: DType, xs: &[f64]) -> DynArray {
    match dt {
        DType::F64 => Array1::from(xs.to_vec()).into(),
        _ => Array1::from(xs.iter().map(|v| *v as f32).collect::<Vec<_>>()).into(),
    }
}

fn to_f64(out: DynArray) -> Vec<f64> {
    match out {
        DynArray::F64(a) => a.iter().copied().collect(),
        DynArray::F32(a) => a.iter().map(|v| *v as f64).collect(),
        _ => unreachable!(),
    }
}

/// Where the expansion runs: the interpreter (the IR's meaning) or the JIT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Engine {
    Interp,
    Jit,
}

/// The expansion of `f` on `xs` (and `ys` for binary functions).
pub(crate) fn run(f: F, dt: DType, xs: &[f64], ys: &[f64], engine: Engine) -> Vec<f64> {
    run_for(f, dt, xs, ys, engine, Target::host())
}

/// [`run`] of the expansion for `target`.
pub(crate) fn run_for(
    f: F,
    dt: DType,
    xs: &[f64],
    ys: &[f64],
    engine: Engine,
    target: Target,
) -> Vec<f64> {
    let k = kernel_for(f, dt, target);
    let a = array(dt, xs);
    let b = array(dt, ys);
    let mut args = vec![a.view()];
    if f.arity() == 2 {
        args.push(b.view());
    }
    let out = match engine {
        Engine::Interp => crate::interp::run(&k, &args, &[xs.len()]).unwrap(),
        Engine::Jit => {
            thread_local! {
                static BE: crate::cpu::CpuBackend = crate::cpu::CpuBackend::new(1).unwrap();
            }
            BE.with(|be| {
                // Already expanded: the backend's own pass leaves it as it is.
                let c = be.compile(&k).unwrap();
                be.run(&c, &args, &[xs.len()]).unwrap()
            })
        }
    };
    to_f64(out)
}

/// ULP distance; NaN matches any NaN (the sign is checked apart), an infinity only itself.
pub(crate) fn ulp(a: f64, b: f64, f32: bool) -> u64 {
    if (a.is_nan() && b.is_nan()) || a == b {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u64::MAX;
    }
    if f32 {
        crate::semantics::ulp_distance_f32(a as f32, b as f32)
    } else {
        crate::semantics::ulp_distance_f64(a, b)
    }
}

/// The worst case found: (ulp, x, y, got, want).
pub(crate) type Worst = (u64, f64, f64, f64, f64);

/// Measure `f` on the pairs `(xs[i], ys[i])`; NaN results must carry glibc's sign bit.
pub(crate) fn measure(f: F, dt: DType, xs: &[f64], ys: &[f64], engine: Engine) -> Worst {
    measure_got(f, dt, xs, ys, &run(f, dt, xs, ys, engine))
}

/// [`measure`] of given results `got` (of `f` on the pairs `(xs[i], ys[i])`).
pub(crate) fn measure_got(f: F, dt: DType, xs: &[f64], ys: &[f64], got: &[f64]) -> Worst {
    let mut worst: Worst = (0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..xs.len() {
        let y = if f.arity() == 2 { ys[i] } else { 0.0 };
        let want = truth(f, dt, xs[i], y);
        let g = got[i];
        let mut u = ulp(g, want, dt == DType::F32);
        if g.is_nan() && want.is_nan() && g.is_sign_negative() != want.is_sign_negative() {
            u = u64::MAX;
        }
        if u > worst.0 || (i == 0 && u == 0) {
            worst = (u, xs[i], y, g, want);
        }
    }
    worst
}

/// The largest ULP distance between the expansion and [`crate::semantics`] (the reference
/// evaluator's libm call, which the differential suites compare the JIT with).
pub(crate) fn vs_semantics(f: F, dt: DType, xs: &[f64], ys: &[f64]) -> (u64, f64, f64) {
    let got = run(f, dt, xs, ys, Engine::Jit);
    let mut worst = (0, 0.0, 0.0);
    for i in 0..xs.len() {
        let y = if f.arity() == 2 { ys[i] } else { 0.0 };
        let want = match (f, dt) {
            (F::U(op), DType::F64) => crate::semantics::unary_f64(op, xs[i]),
            (F::U(op), _) => crate::semantics::unary_f32(op, xs[i] as f32) as f64,
            (F::B(op), DType::F64) => crate::semantics::binary_f64(op, xs[i], y),
            (F::B(op), _) => crate::semantics::binary_f32(op, xs[i] as f32, y as f32) as f64,
        };
        let u = ulp(got[i], want, dt == DType::F32);
        if u > worst.0 {
            worst = (u, xs[i], y);
        }
    }
    worst
}

/// Xorshift: the tests' deterministic random numbers.
pub(crate) struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
    /// Random bits of the float type (every exponent, NaNs and infinities included).
    pub fn bits(&mut self, f64: bool) -> f64 {
        if f64 {
            f64::from_bits(self.next())
        } else {
            f32::from_bits(self.next() as u32) as f64
        }
    }
}

/// Evenly spaced points from lo to hi, plus the special values.
pub(crate) fn sweep(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect();
    v.extend(specials());
    v
}

pub(crate) fn specials() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.0,
        -2.0,
        1e-310,
        -1e-310,
        5e-324,
        -5e-324,
        1e-40,
        -1e-45,
        f64::MIN_POSITIVE,
        f64::MAX,
        -f64::MAX,
        f32::MAX as f64,
        f32::MIN_POSITIVE as f64,
    ]
}

/// Signed powers of two from 2^lo to 2^hi in half-octave steps, and their neighbours.
pub(crate) fn magnitudes(lo: i32, hi: i32) -> Vec<f64> {
    let mut v = vec![];
    for i in 0..(hi - lo) * 2 {
        let m = 2f64.powf(lo as f64 + i as f64 * 0.5);
        v.extend([m, -m, m * 1.0000001, -m * 0.9999999]);
    }
    v
}

/// The exponent range of the float type.
pub(crate) fn exponents(dt: DType) -> (i32, i32) {
    if dt == DType::F64 {
        (-1074, 1023)
    } else {
        (-149, 127)
    }
}

/// Round the inputs to the dtype (f32 inputs are f32 values).
pub(crate) fn of_dtype(dt: DType, v: Vec<f64>) -> Vec<f64> {
    if dt == DType::F64 {
        v
    } else {
        v.into_iter().map(|x| x as f32 as f64).collect()
    }
}

/// Evenly spaced points from lo to hi, plus nine special values (the sweeps of the tests in
/// `mod.rs`).
pub(crate) fn sweep_basic(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect();
    v.extend([
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
        -1.0,
        1e-310,
        5e-324,
    ]);
    v
}

/// The domains of `mod.rs`'s tests (`ulp_table`): dense sweeps where the algorithm switches
/// ranges, the overflow/underflow edges, and magnitudes across the exponent range.
pub(crate) fn dense_domain(op: UnaryOp, dt: DType) -> Vec<f64> {
    let f64 = dt == DType::F64;
    let (emin, emax) = if f64 { (-1074, 1023) } else { (-149, 127) };
    let mut v = match op {
        UnaryOp::Exp if f64 => sweep_basic(-746.0, 710.0, 50001),
        UnaryOp::Exp => sweep_basic(-104.0, 89.0, 50001),
        UnaryOp::Log | UnaryOp::Log2 | UnaryOp::Log10 => {
            let mut v = sweep_basic(0.0, 4.0, 20001);
            v.extend((0..4000).map(|i| 2f64.powf(-1074.0 + i as f64 * 0.5)));
            v.extend((1..=22).map(|i| 10f64.powi(i)));
            v
        }
        UnaryOp::Log1p => {
            let mut v = sweep_basic(-1.0, 4.0, 30001);
            v.extend(sweep_basic(-0.3, 0.5, 20001));
            v
        }
        UnaryOp::Expm1 if f64 => {
            let mut v = sweep_basic(-45.0, 45.0, 40001);
            v.extend(sweep_basic(-1.5, 1.5, 20001));
            v.extend(sweep_basic(700.0, 710.0, 1001));
            v
        }
        UnaryOp::Expm1 => {
            let mut v = sweep_basic(-20.0, 20.0, 40001);
            v.extend(sweep_basic(-1.5, 1.5, 20001));
            v.extend(sweep_basic(85.0, 89.0, 1001));
            v
        }
        UnaryOp::Tanh => {
            let mut v = sweep_basic(-25.0, 25.0, 40001);
            v.extend(sweep_basic(-1.0, 1.0, 20001));
            v
        }
        UnaryOp::Sinh | UnaryOp::Cosh if f64 => {
            let mut v = sweep_basic(-711.0, 711.0, 40001);
            v.extend(sweep_basic(-2.0, 2.0, 20001));
            v
        }
        UnaryOp::Sinh | UnaryOp::Cosh => {
            let mut v = sweep_basic(-90.0, 90.0, 40001);
            v.extend(sweep_basic(-2.0, 2.0, 20001));
            v
        }
        _ => {
            let mut v = sweep_basic(-10.0, 10.0, 40001);
            v.extend(sweep_basic(-3.0, 3.0, 20001));
            v
        }
    };
    v.extend(magnitudes(emin, emax));
    if dt == DType::F32 {
        v.retain(|x| x.is_nan() || (*x as f32) as f64 == *x || x.abs() > 1e39);
    }
    v
}

/// Each unary function's domain: dense sweeps where its algorithm switches ranges, the edges
/// of its domain, magnitudes across the exponent range, random values and random bits.
pub(crate) fn domain(op: UnaryOp, dt: DType) -> Vec<f64> {
    let f64 = dt == DType::F64;
    let (emin, emax) = exponents(dt);
    let mut rng = Rng(0x9E3779B97F4A7C15 ^ op as u64);
    let mut v = specials();
    v.extend(magnitudes(emin, emax));
    match op {
        UnaryOp::Sin | UnaryOp::Cos | UnaryOp::Tan => {
            let lim = if f64 { 1647097.0 } else { 6432.0 };
            v.extend(sweep(-10.0, 10.0, 40001));
            v.extend(sweep(-0.8, 0.8, 20001));
            // Near multiples of pi/2 (the reduction's hardest cases), up to and past the
            // limit of the Cody-Waite reduction (where libm takes over).
            for k in 1..2000i64 {
                let m = (k * k * 7) as f64 * std::f64::consts::FRAC_PI_2;
                if m > lim * 1.1 {
                    break;
                }
                let m = if f64 { m } else { m as f32 as f64 };
                for d in -3i64..=3 {
                    let x = if f64 {
                        f64::from_bits((m.to_bits() as i64 + d) as u64)
                    } else {
                        f32::from_bits((m as f32).to_bits().wrapping_add(d as u32)) as f64
                    };
                    v.extend([x, -x]);
                }
            }
            for k in 1..=200 {
                let m = (k as f64) * std::f64::consts::FRAC_PI_4;
                v.extend([m, -m, m * (1.0 + 1e-9), m * (1.0 - 1e-9)]);
            }
            v.extend(sweep(lim * 0.9, lim * 1.1, 2001));
            v.extend((0..20000).map(|_| rng.uniform(-lim, lim)));
            v.extend((0..20000).map(|_| rng.uniform(-100.0, 100.0)));
        }
        UnaryOp::Arcsin | UnaryOp::Arccos | UnaryOp::Arctanh => {
            v.extend(sweep(-1.0, 1.0, 40001));
            v.extend(sweep(0.45, 0.55, 10001));
            v.extend(sweep(-0.55, -0.45, 10001));
            v.extend(sweep(0.97, 0.98, 5001));
            v.extend(sweep(-0.98, -0.97, 5001));
            v.extend(near(1.0, f64, 2000));
            v.extend(near(-1.0, f64, 2000));
            v.extend(near(0.5, f64, 200));
            v.extend(near(-0.5, f64, 200));
            v.extend((0..20000).map(|_| rng.uniform(-1.0, 1.0)));
            v.extend((0..20000).map(|_| 1.0 - 2f64.powf(-rng.uniform(0.0, 60.0))));
            v.extend((0..5000).map(|_| 2f64.powf(-rng.uniform(0.0, 60.0))));
        }
        UnaryOp::Arcsinh => {
            let big = if f64 { 2f64.powi(28) } else { 2f64.powi(12) };
            v.extend(sweep(-3.0, 3.0, 40001));
            v.extend(sweep(1.9, 2.1, 10001));
            v.extend(sweep(-2.1, -1.9, 10001));
            v.extend(near(2.0, f64, 200));
            v.extend(near(big, f64, 200));
            v.extend(sweep(big * 0.9, big * 1.1, 2001));
            v.extend((0..20000).map(|_| 2f64.powf(rng.uniform(-40.0, 40.0))));
        }
        UnaryOp::Arccosh => {
            let big = if f64 { 2f64.powi(28) } else { 2f64.powi(12) };
            v.extend(sweep(0.0, 3.0, 40001));
            v.extend(sweep(1.0, 1.01, 10001));
            v.extend(sweep(1.9, 2.1, 10001));
            v.extend(near(1.0, f64, 2000));
            v.extend(near(2.0, f64, 200));
            v.extend(near(big, f64, 200));
            v.extend(sweep(big * 0.9, big * 1.1, 2001));
            v.extend((0..20000).map(|_| 1.0 + 2f64.powf(rng.uniform(-52.0, 40.0))));
        }
        _ => {
            v.extend(sweep(-10.0, 10.0, 40001));
        }
    }
    v.extend((0..20000).map(|_| rng.bits(f64)));
    of_dtype(dt, v)
}

/// The float64 arguments `m 2^e` closest to a multiple of pi/2 relative to their size, 40 of
/// them (`m 2^e 2/pi` within 2^-61.5 .. 2^-56 of an integer), with `sin`, `cos`, `tan` of
/// each correctly rounded (bits): the hardest cases of a Payne-Hanek reduction. Found from the
/// continued fractions of `2^e 2/pi mod 1` for every exponent above the Cody-Waite limit, the
/// results computed in 3000-bit arithmetic (mpmath); the first is the known worst case of
/// float64 (Muller, *Elementary Functions*). glibc is not the reference here: its `sin` of
/// `5850965514341686 2^526` is ~1e5 ULP off.
pub(crate) const TRIG_HARD_F64: [(u64, i32, [u64; 3]); 40] = [
    (
        6381956970095103,
        797,
        [0x3ff0000000000000, 0xbc214ae72e6ba22f, 0xc3bd9ba9a7975636],
    ),
    (
        6381956970095103,
        798,
        [0xbc314ae72e6ba22f, 0xbff0000000000000, 0x3c314ae72e6ba22f],
    ),
    (
        7763785107565477,
        -29,
        [0xbff0000000000000, 0xbc3f54f5227a4e84, 0x43a057584c429b3a],
    ),
    (
        5916243447979695,
        79,
        [0xbff0000000000000, 0xbc40cb604d34f341, 0x439e7c7d0f43f81e],
    ),
    (
        6381956970095103,
        799,
        [0x3c414ae72e6ba22f, 0x3ff0000000000000, 0x3c414ae72e6ba22f],
    ),
    (
        8444920710073313,
        939,
        [0x3ff0000000000000, 0x3c4295a3b0a64b1d, 0x439b8cbf7ecfaffa],
    ),
    (
        5850965514341686,
        525,
        [0xbff0000000000000, 0x3c46ec67bcf77522, 0xc39655cf9e23c4d7],
    ),
    (
        8160885118204141,
        808,
        [0xbff0000000000000, 0xbc4d08f59c32bfa3, 0x4391a246b6f92457],
    ),
    (
        8360820580228475,
        628,
        [0x3ff0000000000000, 0x3c4e09878d22e29d, 0x43910ba6f3f467d7],
    ),
    (
        8583082635084172,
        145,
        [0xbff0000000000000, 0x3c4ed415f54c8cb8, 0xc3909ba7e061f301],
    ),
    (
        7763785107565477,
        -28,
        [0x3c4f54f5227a4e84, 0xbff0000000000000, 0xbc4f54f5227a4e84],
    ),
    (
        7958046405119485,
        243,
        [0x3ff0000000000000, 0x3c501242876d7c1b, 0x438fdba46f553a09],
    ),
    (
        5916243447979695,
        80,
        [0x3c50cb604d34f341, 0xbff0000000000000, 0xbc50cb604d34f341],
    ),
    (
        6808218460873451,
        562,
        [0x3ff0000000000000, 0xbc5104830400912a, 0xc38e1621fb1336a5],
    ),
    (
        7636753411044619,
        201,
        [0xbff0000000000000, 0x3c512bbbe07f2de1, 0xc38dd1688c6969ad],
    ),
    (
        6381956970095103,
        800,
        [0x3c514ae72e6ba22f, 0x3ff0000000000000, 0x3c514ae72e6ba22f],
    ),
    (
        8444920710073313,
        940,
        [0x3c5295a3b0a64b1d, 0xbff0000000000000, 0xbc5295a3b0a64b1d],
    ),
    (
        6366906923947931,
        194,
        [0xbff0000000000000, 0xbc561ecec9c577fd, 0x43872567cb9047a9],
    ),
    (
        5850965514341686,
        526,
        [0xbc56ec67bcf77522, 0xbff0000000000000, 0x3c56ec67bcf77522],
    ),
    (
        6617649673795284,
        15,
        [0xbff0000000000000, 0xbc57a6500ca6d83b, 0x4385a63c82b6dae2],
    ),
    (
        6311013172270677,
        38,
        [0xbff0000000000000, 0xbc57a6b2243e72f6, 0x4385a5e2b886a2ab],
    ),
    (
        5648695676206402,
        887,
        [0x3ff0000000000000, 0xbc5cccb7fc6dfae9, 0xc381c7294aee7ba4],
    ),
    (
        8160885118204141,
        809,
        [0x3c5d08f59c32bfa3, 0xbff0000000000000, 0xbc5d08f59c32bfa3],
    ),
    (
        6221301883130153,
        969,
        [0xbff0000000000000, 0xbc5dd15f96b823f2, 0x43812bc109561cd5],
    ),
    (
        8360820580228475,
        629,
        [0x3c5e09878d22e29d, 0xbff0000000000000, 0xbc5e09878d22e29d],
    ),
    (
        6951690029616219,
        503,
        [0x3ff0000000000000, 0xbc5eca040e98a76f, 0xc380a1166d8ca6e2],
    ),
    (
        8583082635084172,
        146,
        [0xbc5ed415f54c8cb8, 0xbff0000000000000, 0x3c5ed415f54c8cb8],
    ),
    (
        7763785107565477,
        -27,
        [0xbc5f54f5227a4e84, 0x3ff0000000000000, 0xbc5f54f5227a4e84],
    ),
    (
        7958046405119485,
        244,
        [0x3c601242876d7c1b, 0xbff0000000000000, 0xbc601242876d7c1b],
    ),
    (
        5916243447979695,
        81,
        [0xbc60cb604d34f341, 0x3ff0000000000000, 0xbc60cb604d34f341],
    ),
    (
        6808218460873451,
        563,
        [0xbc6104830400912a, 0xbff0000000000000, 0x3c6104830400912a],
    ),
    (
        7636753411044619,
        202,
        [0xbc612bbbe07f2de1, 0xbff0000000000000, 0x3c612bbbe07f2de1],
    ),
    (
        6381956970095103,
        801,
        [0x3c614ae72e6ba22f, 0x3ff0000000000000, 0x3c614ae72e6ba22f],
    ),
    (
        6101578227064009,
        91,
        [0x3ff0000000000000, 0xbc61fa59d4990bd6, 0xc37c7ab7389c24d7],
    ),
    (
        8438258240500718,
        637,
        [0x3ff0000000000000, 0xbc628904e0d7f525, 0xc37b9f819ad8b5e8],
    ),
    (
        8444920710073313,
        941,
        [0xbc6295a3b0a64b1d, 0x3ff0000000000000, 0xbc6295a3b0a64b1d],
    ),
    (
        4595526034082901,
        130,
        [0xbff0000000000000, 0xbc635481dbfbe4fc, 0x437a7cb7cb4280b0],
    ),
    (
        7750232865711478,
        435,
        [0xbff0000000000000, 0x3c638ffe4e7e3a15, 0xc37a2c2ccbc1a632],
    ),
    (
        8510948914910667,
        356,
        [0x3ff0000000000000, 0x3c63b5dbbbe33dec, 0x4379f9e551266c3c],
    ),
    (
        6448461629705574,
        742,
        [0xbff0000000000000, 0xbc63c408220c4c3f, 0x4379e744df9d68fc],
    ),
];

/// The same for float32 (within 2^-29.9 .. 2^-25 of an integer), results as float32 bits.
pub(crate) const TRIG_HARD_F32: [(u64, i32, [u32; 3]); 40] = [
    (16367173, 72, [0x3f800000, 0xb0ddeea9, 0xce13a60e]),
    (10741887, 11, [0x3f800000, 0xb10a4ed8, 0xcdeceba8]),
    (16367173, 73, [0xb15deea9, 0xbf800000, 0x315deea9]),
    (10741887, 12, [0xb18a4ed8, 0xbf800000, 0x318a4ed8]),
    (16367173, 74, [0x31ddeea9, 0x3f800000, 0x31ddeea9]),
    (10057457, 62, [0x3f800000, 0xb1de3bdf, 0xcd1372c2]),
    (11617958, 17, [0xbf800000, 0xb1eda4f2, 0x4d09e302]),
    (9012376, 53, [0x3f800000, 0xb1fbf026, 0xcd02104f]),
    (10741887, 13, [0x320a4ed8, 0x3f800000, 0x320a4ed8]),
    (14173733, 88, [0xbf800000, 0xb22fa975, 0x4cba8a45]),
    (10695401, 2, [0xbf800000, 0x32493de6, 0xcca2d439]),
    (14015064, 66, [0x3f800000, 0x324dba59, 0x4c9f4741]),
    (16367173, 75, [0x325deea9, 0x3f800000, 0x325deea9]),
    (10057457, 63, [0xb25e3bdf, 0xbf800000, 0x325e3bdf]),
    (8895696, 34, [0xbf800000, 0x32642cfe, 0xcc8f9bcd]),
    (11617958, 18, [0x326da4f2, 0xbf800000, 0xb26da4f2]),
    (9012376, 54, [0xb27bf026, 0xbf800000, 0x327bf026]),
    (10741887, 14, [0x328a4ed8, 0x3f800000, 0x328a4ed8]),
    (13444207, -8, [0x3f800000, 0xb28b5715, 0xcc6b2a5f]),
    (12558490, 78, [0x3f800000, 0x328f3e7d, 0x4c64c1a2]),
    (10838702, -2, [0x3f800000, 0xb2a411de, 0xcc47b84a]),
    (14173733, 89, [0x32afa975, 0xbf800000, 0xb2afa975]),
    (11405107, 50, [0xbf800000, 0xb2b12ec1, 0x4c38f06a]),
    (9688229, 6, [0x3f800000, 0xb2c4c150, 0xcc268ac3]),
    (12438944, 103, [0xbf800000, 0xb2c6a3dd, 0x4c24f630]),
    (10695401, 3, [0xb2c93de6, 0xbf800000, 0x32c93de6]),
    (14015064, 67, [0x32cdba59, 0xbf800000, 0xb2cdba59]),
    (16367173, 76, [0x32ddeea9, 0x3f800000, 0x32ddeea9]),
    (10057457, 64, [0x32de3bdf, 0x3f800000, 0x32de3bdf]),
    (8895696, 35, [0xb2e42cfe, 0xbf800000, 0x32e42cfe]),
    (11617958, 19, [0xb2eda4f2, 0x3f800000, 0xb2eda4f2]),
    (9012376, 55, [0x32fbf026, 0x3f800000, 0x32fbf026]),
    (14946604, 41, [0x3f800000, 0xb305caf9, 0xcbf4ea78]),
    (10741887, 15, [0x330a4ed8, 0x3f800000, 0x330a4ed8]),
    (13444207, -7, [0xb30b5715, 0xbf800000, 0x330b5715]),
    (12558490, 79, [0x330f3e7d, 0xbf800000, 0xb30f3e7d]),
    (8545886, -5, [0xbf800000, 0xb31386d1, 0x4bde1da8]),
    (12615508, 92, [0xbf800000, 0xb31569ba, 0x4bdb4fc4]),
    (10511298, 68, [0xbf800000, 0xb31a4bc3, 0x4bd45f01]),
    (13034427, 60, [0xbf800000, 0xb31eb2f0, 0x4bce7a9d]),
];

/// `x` and its `n` neighbours on each side in the type's spacing.
pub(crate) fn near(x: f64, f64: bool, n: i64) -> Vec<f64> {
    (-n..=n)
        .map(|d| {
            if f64 {
                f64::from_bits((x.to_bits() as i64 + d) as u64)
            } else {
                f32::from_bits(((x as f32).to_bits() as i64 + d) as u32) as f64
            }
        })
        .collect()
}

/// Each binary function's domain, as pairs: specials against specials, magnitudes against
/// magnitudes across the exponent range, random values and random bits, and the cases where
/// the algorithm switches ranges.
pub(crate) fn binary_domain(op: BinaryOp, dt: DType) -> (Vec<f64>, Vec<f64>) {
    let f64 = dt == DType::F64;
    let (emin, emax) = exponents(dt);
    let mut rng = Rng(0xD1B54A32D192ED03 ^ op as u64);
    let (mut xs, mut ys) = (vec![], vec![]);
    let mut push = |x: f64, y: f64| {
        xs.push(x);
        ys.push(y);
    };
    let mut sp = specials();
    sp.extend([
        3.0, -3.0, 0.25, 1e10, -1e10, 1e-10, 1e300, 1e-300, 7.5, -0.75,
    ]);
    for &a in &sp {
        for &b in &sp {
            push(a, b);
        }
    }
    // Powers of two against powers of two (every 7th exponent), and their neighbours.
    let step = if f64 { 7 } else { 3 };
    for i in (emin..=emax).step_by(step) {
        for j in (emin..=emax).step_by(step * 5) {
            let (a, b) = (2f64.powi(i), 2f64.powi(j));
            push(a, b);
            push(-a * 1.0000001, b * 0.9999999);
        }
    }
    for _ in 0..40000 {
        push(rng.uniform(-10.0, 10.0), rng.uniform(-10.0, 10.0));
    }
    for _ in 0..40000 {
        push(rng.bits(f64), rng.bits(f64));
    }
    match op {
        BinaryOp::Arctan2 => {
            // Ratios near atan's interval edges and near 1, at every scale.
            for &t in &[0.4375, 0.6875, 1.1875, 2.4375, 1.0, 1e-20, 1e20] {
                for _ in 0..4000 {
                    let x = 2f64.powf(rng.uniform(-60.0, 60.0))
                        * if rng.next() & 1 == 1 { 1.0 } else { -1.0 };
                    let y = x * t * (1.0 + rng.uniform(-1e-3, 1e-3));
                    push(y, x);
                }
            }
        }
        BinaryOp::Pow => {
            let (over, under) = if f64 {
                (1024.0, -1075.0)
            } else {
                (128.0, -150.0)
            };
            // Positive x over the whole range with y near the over/underflow edges.
            for _ in 0..40000 {
                let x = 2f64.powf(rng.uniform(emin as f64, emax as f64));
                let edge = if rng.next() & 1 == 1 { over } else { under };
                let y = edge / x.log2() * (1.0 + rng.uniform(-1e-6, 1e-6));
                push(x, y);
            }
            // x near 1 with huge y (the log's relative accuracy matters).
            for _ in 0..20000 {
                let x = 1.0 + rng.uniform(-1.0, 1.0) * 2f64.powf(-rng.uniform(10.0, 53.0));
                let y = rng.uniform(-1.0, 1.0) * 2f64.powf(rng.uniform(0.0, 64.0));
                push(x, y);
            }
            // Integer exponents with negative and positive bases; typical ranges.
            for _ in 0..20000 {
                let x = rng.uniform(-20.0, 20.0);
                let y = (rng.uniform(-60.0, 60.0)).round();
                push(x, y);
            }
            for _ in 0..20000 {
                push(rng.uniform(0.0, 100.0), rng.uniform(-20.0, 20.0));
            }
            // Subnormal and tiny bases, fractional exponents.
            for _ in 0..10000 {
                let x = 2f64.powf(rng.uniform(emin as f64, -100.0f64.max(emin as f64 + 1.0)));
                push(x, rng.uniform(-1.0, 1.0));
            }
        }
        _ => {
            // hypot: ratios from 1 to 2^-70, at every scale (overflow and underflow edges).
            for _ in 0..40000 {
                let e = rng.uniform(emin as f64, emax as f64);
                let x = 2f64.powf(e);
                let y = x * 2f64.powf(-rng.uniform(0.0, 70.0));
                push(x, -y);
            }
            let m = if f64 { f64::MAX } else { f32::MAX as f64 };
            for k in 0..200 {
                let s = 0.5 + k as f64 * 0.0025;
                push(m * s, m * s);
                push(m * s * 0.01, m * s);
            }
        }
    }
    (of_dtype(dt, xs), of_dtype(dt, ys))
}

#[test]
fn binary_ulp_table() {
    let mut rows = vec![];
    for (op, dt, bound) in BINARY_ULP_BOUNDS {
        let (xs0, ys0) = binary_domain(op, dt);
        let mut rng = Rng(0xE7037ED1A0B428DB ^ op as u64);
        let (mut xs1, mut ys1) = (xs0.clone(), ys0.clone());
        for _ in 0..200_000 {
            xs1.push(rng.bits(dt == DType::F64));
            ys1.push(rng.bits(dt == DType::F64));
        }
        let (xs1, ys1) = (of_dtype(dt, xs1), of_dtype(dt, ys1));
        for engine in [Engine::Jit, Engine::Interp] {
            let (xs, ys) = if engine == Engine::Jit {
                (&xs1, &ys1)
            } else {
                (&xs0, &ys0)
            };
            let (u, x, y, g, w) = measure(F::B(op), dt, xs, ys, engine);
            let sem = if engine == Engine::Jit {
                let (su, sx, sy) = vs_semantics(F::B(op), dt, xs, ys);
                format!("{su} at ({sx:e}, {sy:e})")
            } else {
                String::new()
            };
            rows.push(format!(
                "| {op} | {dt} | {engine:?} | {u} (bound {bound}) | worst at ({x:e}, {y:e}): {g:e} vs {w:e} | vs semantics {sem} |"
            ));
            if std::env::var("FUSEBOX_ULP_NO_ASSERT").is_err() {
                assert!(
                    u <= bound,
                    "{op}.{dt} [{engine:?}]({x:e}, {y:e}) = {g:e}, glibc {w:e}: {u} ulp > {bound}"
                );
            }
        }
    }
    eprintln!("{}", rows.join("\n"));
}

fn bound_of(f: F, dt: DType) -> u64 {
    let found = match f {
        F::U(op) => ULP_BOUNDS
            .iter()
            .find(|b| b.0 == op && b.1 == dt)
            .map(|b| b.2),
        F::B(op) => BINARY_ULP_BOUNDS
            .iter()
            .find(|b| b.0 == op && b.1 == dt)
            .map(|b| b.2),
    };
    found.unwrap_or_else(|| panic!("no bound for {} {dt}", f.name()))
}

/// The unary functions this file adds.
pub(crate) const NEW_UNARY: [UnaryOp; 8] = [
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Tan,
    UnaryOp::Arcsin,
    UnaryOp::Arccos,
    UnaryOp::Arcsinh,
    UnaryOp::Arccosh,
    UnaryOp::Arctanh,
];

#[test]
fn new_unary_ulp_table() {
    let mut rows = vec![];
    for op in NEW_UNARY {
        for dt in [DType::F64, DType::F32] {
            let xs = domain(op, dt);
            // The JIT also takes 200,000 more random bit patterns (cheap there).
            let mut rng = Rng(0xA0761D6478BD642F ^ op as u64);
            let mut more = xs.clone();
            more.extend((0..200_000).map(|_| rng.bits(dt == DType::F64)));
            let more = of_dtype(dt, more);
            for engine in [Engine::Jit, Engine::Interp] {
                let xs = if engine == Engine::Jit { &more } else { &xs };
                let (u, x, _, g, w) = measure(F::U(op), dt, xs, xs, engine);
                let bound = bound_of(F::U(op), dt);
                let sem = if engine == Engine::Jit {
                    let (su, sx, _) = vs_semantics(F::U(op), dt, xs, xs);
                    format!("{su} at {sx:e}")
                } else {
                    String::new()
                };
                rows.push(format!(
                    "| {op} | {dt} | {engine:?} | {u} (bound {bound}) | worst at {x:e}: {g:e} vs {w:e} | vs semantics {sem} |"
                ));
                if std::env::var("FUSEBOX_ULP_NO_ASSERT").is_err() {
                    assert!(
                        u <= bound,
                        "{op}.{dt} [{engine:?}]({x:e}) = {g:e}, glibc {w:e}: {u} ulp > {bound}"
                    );
                }
            }
        }
    }
    eprintln!("{}", rows.join("\n"));
}

/// Typical arguments for timing each function (1e6 of them).
fn speed_inputs(f: F, dt: DType, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let (lo, hi, lo2, hi2) = match f {
        F::U(UnaryOp::Arcsin | UnaryOp::Arccos | UnaryOp::Arctanh) => (-1.0, 1.0, 0.0, 0.0),
        F::U(UnaryOp::Arccosh) => (1.0, 100.0, 0.0, 0.0),
        F::U(UnaryOp::Log | UnaryOp::Log2 | UnaryOp::Log10) => (0.0, 100.0, 0.0, 0.0),
        F::U(UnaryOp::Log1p) => (-0.9, 100.0, 0.0, 0.0),
        F::B(BinaryOp::Pow) => (0.0, 10.0, -10.0, 10.0),
        F::B(_) => (-10.0, 10.0, -10.0, 10.0),
        _ => (-10.0, 10.0, 0.0, 0.0),
    };
    let xs = (0..n).map(|_| rng.uniform(lo, hi)).collect();
    let ys = (0..n).map(|_| rng.uniform(lo2, hi2)).collect();
    (of_dtype(dt, xs), of_dtype(dt, ys))
}

/// Seconds per call of the vector expansion and of the libm loop on 1e6 elements, one
/// thread, interleaved (the minimum of 15 runs each, `FUSEBOX_SPEED_REPS` to change):
/// `(expanded, libm)`.
pub(crate) fn time_pair(f: F, dt: DType) -> (f64, f64) {
    let n = 1_000_000;
    let (xs, ys) = speed_inputs(f, dt, n);
    let (a, b) = (array(dt, &xs), array(dt, &ys));
    let mut args = vec![a.view()];
    if f.arity() == 2 {
        args.push(b.view());
    }
    let be = crate::cpu::CpuBackend::new(1).unwrap();
    let expanded = be.compile(&kernel(f, dt)).unwrap();
    assert!(expanded.has_simd(), "{} {dt}: no SIMD loop", f.name());
    let mut raw = KernelBuilder::new();
    let vals: Vec<Value> = (0..f.arity())
        .map(|_| {
            let i = raw.input(dt);
            raw.push(Inst::Load { input: i }, dt)
        })
        .collect();
    let y = match f {
        F::U(op) => raw.push(Inst::Unary { op, arg: vals[0] }, dt),
        F::B(op) => raw.push(
            Inst::Binary {
                op,
                lhs: vals[0],
                rhs: vals[1],
            },
            dt,
        ),
    };
    let libm = be
        .compile_unexpanded(&raw.finish(Output::Store { value: y }))
        .unwrap();
    let (mut te, mut tl) = (f64::MAX, f64::MAX);
    let reps: usize = std::env::var("FUSEBOX_SPEED_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    for _ in 0..reps {
        let t = std::time::Instant::now();
        std::hint::black_box(be.run(&expanded, &args, &[n]).unwrap());
        te = te.min(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        std::hint::black_box(be.run(&libm, &args, &[n]).unwrap());
        tl = tl.min(t.elapsed().as_secs_f64());
    }
    (te, tl)
}

/// `cargo test --release --lib mathlib::accuracy::speed -- --ignored --nocapture`: the
/// ratios recorded in the docs of [`super::expands`].
#[test]
#[ignore = "timing; run in release at normal priority"]
fn speed() {
    let only = std::env::var("FUSEBOX_SPEED_ONLY").ok();
    let mut fs: Vec<F> = vec![F::U(UnaryOp::Exp), F::U(UnaryOp::Log)];
    fs.extend(NEW_UNARY.iter().map(|op| F::U(*op)));
    fs.extend(BINARY_ULP_BOUNDS.iter().map(|b| F::B(b.0)));
    fs.dedup();
    for f in fs {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|n| n == f.name()))
        {
            continue;
        }
        for dt in [DType::F64, DType::F32] {
            let (te, tl) = time_pair(f, dt);
            eprintln!(
                "{:>8} {dt}: vector {:6.2} ns/elem, libm {:6.2} ns/elem, libm/vector {:.2}x",
                f.name(),
                te * 1e3,
                tl * 1e3,
                tl / te
            );
        }
    }
}

/// Every f32 input (both signs, all exponents, NaNs) of the f32 expansions on the JIT, against
/// glibc's f64 function rounded to f32: `FUSEBOX_EXHAUSTIVE=sin,cos cargo test --release --lib
/// mathlib::accuracy::exhaustive_f32 -- --ignored --nocapture` (about a minute per function).
/// Binary functions take every `x` against two `y` values (-3 and 0.1).
/// `FUSEBOX_EXHAUSTIVE_TARGET=wgsl` measures the GPU's expansions ([`Target::WGSL`]) instead.
#[test]
#[ignore = "minutes; run on demand"]
fn exhaustive_f32() {
    let names = std::env::var("FUSEBOX_EXHAUSTIVE").unwrap_or_default();
    let mut fs: Vec<F> = UnaryOp::ALL
        .iter()
        .filter(|op| implements(**op, DType::F32))
        .map(|op| F::U(*op))
        .collect();
    fs.extend(
        BinaryOp::ALL
            .iter()
            .filter(|op| implements_binary(**op, DType::F32))
            .map(|op| F::B(*op)),
    );
    let be = crate::cpu::CpuBackend::new(1).unwrap();
    for f in fs {
        if !names.split(',').any(|n| n == f.name() || n == "all") {
            continue;
        }
        let target = match std::env::var("FUSEBOX_EXHAUSTIVE_TARGET").as_deref() {
            Ok("wgsl") => Target::WGSL,
            _ => Target::host(),
        };
        let k = be.compile(&kernel_for(f, DType::F32, target)).unwrap();
        let ys: Vec<f32> = match f {
            F::U(_) => vec![0.0],
            F::B(_) => vec![-3.0, 0.1],
        };
        let chunk = 1usize << 22;
        let mut worst: Worst = (0, 0.0, 0.0, 0.0, 0.0);
        let mut hist = [0u64; 4];
        let mut sem_worst = (0u64, 0.0f32, 0.0f32);
        for &y in &ys {
            for start in (0..1u64 << 32).step_by(chunk) {
                let xs: Vec<f32> = (start..start + chunk as u64)
                    .map(|b| f32::from_bits(b as u32))
                    .collect();
                let a: DynArray = Array1::from(xs.clone()).into();
                let b: DynArray = Array1::from(vec![y; chunk]).into();
                let mut args = vec![a.view()];
                if f.arity() == 2 {
                    args.push(b.view());
                }
                let out = be.run(&k, &args, &[chunk]).unwrap();
                let DynArray::F32(out) = out else { panic!() };
                for (x, g) in xs.iter().zip(out.iter()) {
                    let want = truth(f, DType::F32, *x as f64, y as f64);
                    let g = *g as f64;
                    let mut u = ulp(g, want, true);
                    if g.is_nan()
                        && want.is_nan()
                        && g.is_sign_negative() != want.is_sign_negative()
                    {
                        u = u64::MAX;
                    }
                    hist[(u.min(3)) as usize] += 1;
                    if u > worst.0 {
                        worst = (u, *x as f64, y as f64, g, want);
                    }
                    let sem = match f {
                        F::U(op) => crate::semantics::unary_f32(op, *x),
                        F::B(op) => crate::semantics::binary_f32(op, *x, y),
                    };
                    let su = ulp(g, sem as f64, true);
                    if su > sem_worst.0 {
                        sem_worst = (su, *x, y);
                    }
                }
            }
        }
        eprintln!(
            "{} f32 exhaustive: max {} ULP at ({:e}, {:e}): {:e} vs {:e}; 0/1/2/3+ ULP: {:?}; \
             vs semantics: max {} ULP at ({:e}, {:e})",
            f.name(),
            worst.0,
            worst.1,
            worst.2,
            worst.3,
            worst.4,
            hist,
            sem_worst.0,
            sem_worst.1,
            sem_worst.2
        );
        assert!(worst.0 <= bound_of(f, DType::F32));
    }
}

#[test]
#[ignore = "prints the size of each expansion"]
fn expansion_sizes() {
    let mut fs: Vec<F> = UnaryOp::ALL
        .iter()
        .filter(|op| implements(**op, DType::F64))
        .map(|op| F::U(*op))
        .collect();
    fs.extend(BINARY_ULP_BOUNDS.iter().map(|b| F::B(b.0)));
    fs.dedup();
    for f in fs {
        for dt in [DType::F64, DType::F32] {
            let k = kernel(f, dt);
            let consts = k
                .insts
                .iter()
                .filter(|d| matches!(d.inst, Inst::Const(_)))
                .count();
            eprintln!(
                "{:>8} {dt}: {} instructions ({consts} constants)",
                f.name(),
                k.insts.len()
            );
        }
    }
}

/// `semantics.rs` (the reference evaluator and the JIT's libm calls) gives the NaNs glibc
/// gives, sign included, for every function this file expands.
#[test]
fn semantics_nan_signs_match_glibc() {
    let sp = specials();
    let mut bad = vec![];
    for op in NEW_UNARY {
        for dt in [DType::F64, DType::F32] {
            for &x in &sp {
                let want = truth(F::U(op), dt, x, 0.0);
                let sem = match dt {
                    DType::F64 => crate::semantics::unary_f64(op, x),
                    _ => crate::semantics::unary_f32(op, x as f32) as f64,
                };
                if want.is_nan() != sem.is_nan()
                    || (want.is_nan() && want.is_sign_negative() != sem.is_sign_negative())
                {
                    bad.push(format!("{op}.{dt}({x:e}): glibc {want}, semantics {sem}"));
                }
            }
        }
    }
    for b in BINARY_ULP_BOUNDS {
        for &x in &sp {
            for &y in &sp {
                let want = truth(F::B(b.0), b.1, x, y);
                let sem = match b.1 {
                    DType::F64 => crate::semantics::binary_f64(b.0, x, y),
                    _ => crate::semantics::binary_f32(b.0, x as f32, y as f32) as f64,
                };
                if want.is_nan() != sem.is_nan()
                    || (want.is_nan() && want.is_sign_negative() != sem.is_sign_negative())
                {
                    bad.push(format!(
                        "{}.{}({x:e}, {y:e}): glibc {want}, semantics {sem}",
                        b.0, b.1
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The JIT (SIMD loop and scalar tail) computes exactly what the IR means: the interpreter's
/// bits, NaNs included, for every function of this file over its whole test domain.
#[test]
fn interpreter_and_jit_agree_bit_for_bit() {
    let mut cases: Vec<(F, DType, Vec<f64>, Vec<f64>)> = vec![];
    for dt in [DType::F64, DType::F32] {
        for op in NEW_UNARY {
            let xs = domain(op, dt);
            cases.push((F::U(op), dt, xs.clone(), xs));
        }
        for b in BINARY_ULP_BOUNDS.iter().filter(|b| b.1 == dt) {
            let (xs, ys) = binary_domain(b.0, dt);
            cases.push((F::B(b.0), dt, xs, ys));
        }
    }
    for (f, dt, xs, ys) in cases {
        let jit = run(f, dt, &xs, &ys, Engine::Jit);
        let interp = run(f, dt, &xs, &ys, Engine::Interp);
        for i in 0..xs.len() {
            assert!(
                jit[i].to_bits() == interp[i].to_bits(),
                "{} {dt}({:e}, {:e}): JIT {:e} ({:#x}), interpreter {:e} ({:#x})",
                f.name(),
                xs[i],
                ys[i],
                jit[i],
                jit[i].to_bits(),
                interp[i],
                interp[i].to_bits()
            );
        }
    }
}
