//! Tests of the expansions of `mod.rs`, `exp.rs` and `log.rs`: their ULP tables against glibc
//! on each target, the choice of algorithm by target, and the GPU target's guarantees (see
//! `accuracy.rs` for the trigonometric, inverse and power functions).
use super::accuracy::{dense_domain as domain, sweep_basic as sweep, ulp};
use super::*;
use crate::array::DynArray;
use ndarray::Array1;

/// The expansion for `target`, run by the interpreter (which has every primitive).
fn run_for(op: UnaryOp, dt: DType, xs: &[f64], target: Target) -> Vec<f64> {
    let k = expand_all_for(&accuracy::raw_kernel(accuracy::F::U(op), dt), target);
    k.verify().unwrap();
    assert!(
        !k.to_string().contains(&format!("{}.", op.name())),
        "expanded:\n{k}"
    );
    let arr: DynArray = match dt {
        DType::F64 => Array1::from(xs.to_vec()).into(),
        _ => Array1::from(xs.iter().map(|v| *v as f32).collect::<Vec<_>>()).into(),
    };
    let out = crate::interp::run(&k, &[arr.view()], &[xs.len()]).unwrap();
    match out {
        DynArray::F64(a) => a.iter().copied().collect(),
        DynArray::F32(a) => a.iter().map(|v| *v as f64).collect(),
        _ => unreachable!(),
    }
}

/// The reference: glibc's f64 functions (within 1 ULP of the exact result, most of them
/// correctly rounded), and for f32 the f64 result rounded to f32 (within half an f32 ULP
/// plus a negligible double rounding).
fn truth(op: UnaryOp, dt: DType, x: f64) -> f64 {
    let f = |x: f64| match op {
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Log2 => x.log2(),
        UnaryOp::Log10 => x.log10(),
        UnaryOp::Log1p => x.ln_1p(),
        UnaryOp::Expm1 => x.exp_m1(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sinh => x.sinh(),
        UnaryOp::Cosh => x.cosh(),
        UnaryOp::Arctan => x.atan(),
        _ => crate::semantics::unary_f64(op, x),
    };
    match dt {
        DType::F64 => f(x),
        _ => f(x as f32 as f64) as f32 as f64,
    }
}

fn max_ulp(op: UnaryOp, dt: DType, xs: &[f64]) -> u64 {
    max_ulp_for(op, dt, xs, Target::host())
}

fn max_ulp_for(op: UnaryOp, dt: DType, xs: &[f64], target: Target) -> u64 {
    check_ulp(op, dt, xs, &run_for(op, dt, xs, target))
}

/// The largest distance of `got` from the reference; panics where it exceeds the bound.
fn check_ulp(op: UnaryOp, dt: DType, xs: &[f64], got: &[f64]) -> u64 {
    xs.iter()
        .zip(got)
        .map(|(x, g)| {
            let want = truth(op, dt, *x);
            let u = ulp(*g, want, dt == DType::F32);
            let bound = ULP_BOUNDS
                .iter()
                .find(|b| b.0 == op && b.1 == dt)
                .unwrap()
                .2;
            assert!(
                u <= bound,
                "{op}.{dt}({x:e}) = {g:e}, libm {want:e}, {u} ulp"
            );
            u
        })
        .max()
        .unwrap()
}

/// Both `exp` algorithms: the FMA one (what the JIT runs where the CPU has FMA) and the
/// one of plain operations.
const TARGETS: [Target; 3] = [
    Target {
        fma: true,
        tables: true,
        fallback: true,
    },
    Target {
        fma: true,
        tables: false,
        fallback: true,
    },
    Target {
        fma: false,
        tables: false,
        fallback: true,
    },
];

#[test]
fn exp_within_one_ulp() {
    for t in TARGETS {
        max_ulp_for(UnaryOp::Exp, DType::F64, &sweep(-746.0, 710.0, 20001), t);
        max_ulp_for(UnaryOp::Exp, DType::F64, &sweep(-2.0, 2.0, 20001), t);
        max_ulp_for(UnaryOp::Exp, DType::F32, &sweep(-104.0, 89.0, 20001), t);
        max_ulp_for(UnaryOp::Exp, DType::F32, &sweep(-2.0, 2.0, 20001), t);
    }
}

/// The table `exp` (float64, ~0.51 ULP from exact) is glibc's result, which is correctly
/// rounded nearly always, in all but a few hard-to-round cases of a dense sweep and of
/// random arguments (measured: 381 of 300,010, 0.13%; the FMA polynomial: 7,220, 2.4%):
/// a check finer than the 1-ULP bound.
#[test]
fn exp_table_is_glibc_nearly_always() {
    let t = Target {
        fma: true,
        tables: true,
        fallback: true,
    };
    let mut state = 0x9E3779B97F4A7C15u64;
    let mut xs = sweep(-708.0, 708.0, 200_001);
    xs.extend((0..100_000).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 1416.0 - 708.0
    }));
    let got = run_for(UnaryOp::Exp, DType::F64, &xs, t);
    let differ = xs
        .iter()
        .zip(&got)
        .filter(|(x, g)| x.exp().to_bits() != g.to_bits())
        .count();
    eprintln!("table exp differs from glibc in {differ} of {}", xs.len());
    assert!(differ * 500 < xs.len(), "{differ} of {} differ", xs.len());
}

/// The table's check fails on a result one ULP beyond the bound (so a regression in the
/// expansions cannot pass unnoticed).
#[test]
#[should_panic(expected = "2 ulp")]
fn ulp_check_fails_beyond_the_bound() {
    let xs = [0.5, 1.5];
    let got: Vec<f64> = xs
        .iter()
        .map(|x: &f64| f64::from_bits(x.exp().to_bits() + 2))
        .collect();
    check_ulp(UnaryOp::Exp, DType::F64, &xs, &got);
}

/// The FMA `exp` uses fused multiply-adds and no division; the other none.
#[test]
fn exp_expansion_follows_the_target() {
    let exp = accuracy::F::U(UnaryOp::Exp);
    let k = accuracy::raw_kernel(exp, DType::F64);
    let fast = expand_for(
        &k,
        Target {
            fma: true,
            tables: false,
            fallback: true,
        },
    )
    .to_string();
    let plain = expand_for(
        &k,
        Target {
            fma: false,
            tables: false,
            fallback: true,
        },
    )
    .to_string();
    assert!(
        fast.contains("fma.f64") && !fast.contains("div.f64"),
        "{fast}"
    );
    assert!(
        !plain.contains("fma.") && plain.contains("div.f64"),
        "{plain}"
    );
    assert!(!fast.contains("lookup") && !plain.contains("lookup"));
    // With tables too: float64 reads 2^(j/128) (both halves); float32 keeps the polynomial.
    let tables = Target {
        fma: true,
        tables: true,
        fallback: true,
    };
    let table = expand_for(&k, tables).to_string();
    assert!(
        table.contains("lookup.f64 exp2_128_hi")
            && table.contains("lookup.f64 exp2_128_lo")
            && table.contains("fma.f64")
            && !table.contains("div.f64"),
        "{table}"
    );
    let t32 = expand_for(&accuracy::raw_kernel(exp, DType::F32), tables).to_string();
    assert!(t32.contains("fma.f32") && !t32.contains("lookup"), "{t32}");
}

/// Measures every function of `ULP_BOUNDS` over its whole domain and prints the table (the
/// trigonometric and inverse functions: `accuracy::new_unary_ulp_table`, with glibc's
/// `asinh`, `acosh`, `atanh` as the reference and domains of their own).
#[test]
fn ulp_table() {
    let mut rows = vec![];
    for (op, dt, bound) in ULP_BOUNDS {
        if accuracy::NEW_UNARY.contains(&op) {
            continue;
        }
        if op == UnaryOp::Exp {
            for t in TARGETS {
                let m = max_ulp_for(op, dt, &domain(op, dt), t);
                let how = match (t.fma, t.tables && dt == DType::F64) {
                    (true, true) => "table",
                    (true, false) => "fma",
                    _ => "no fma",
                };
                rows.push(format!("| {op} ({how}) | {dt} | {m} (bound {bound}) |"));
            }
            continue;
        }
        let m = max_ulp(op, dt, &domain(op, dt));
        rows.push(format!("| {op} | {dt} | {m} (bound {bound}) |"));
    }
    eprintln!(
        "| function | dtype | max ULP measured |\n|---|---|---|\n{}",
        rows.join("\n")
    );
}

/// Random bit patterns: every exponent, sign and payload, NaNs and infinities included.
#[test]
fn random_bit_patterns_within_bounds() {
    let mut state = 0x243F6A8885A308D3u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let xs: Vec<f64> = (0..100_000).map(|_| f64::from_bits(next())).collect();
    max_ulp(UnaryOp::Log, DType::F64, &xs);
    let xs32: Vec<f64> = (0..100_000)
        .map(|_| f32::from_bits(next() as u32) as f64)
        .collect();
    max_ulp(UnaryOp::Log, DType::F32, &xs32);
    // exp: uniform over the interesting range, plus random bits (mostly huge: inf or 0).
    let e: Vec<f64> = (0..100_000)
        .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 1460.0 - 750.0)
        .collect();
    for t in TARGETS {
        max_ulp_for(UnaryOp::Exp, DType::F64, &e, t);
        max_ulp_for(UnaryOp::Exp, DType::F64, &xs, t);
    }
    let e32: Vec<f64> = (0..100_000)
        .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 105.0)
        .collect();
    for t in TARGETS {
        max_ulp_for(UnaryOp::Exp, DType::F32, &e32, t);
        max_ulp_for(UnaryOp::Exp, DType::F32, &xs32, t);
    }
    // The others: random bits, and uniform values over their interesting ranges.
    let u: Vec<f64> = (0..100_000)
        .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 60.0 - 30.0)
        .collect();
    let u32v: Vec<f64> = u.iter().map(|v| *v as f32 as f64).collect();
    for op in [
        UnaryOp::Log2,
        UnaryOp::Log10,
        UnaryOp::Log1p,
        UnaryOp::Expm1,
        UnaryOp::Tanh,
        UnaryOp::Sinh,
        UnaryOp::Cosh,
        UnaryOp::Arctan,
    ] {
        max_ulp(op, DType::F64, &xs);
        max_ulp(op, DType::F64, &u);
        max_ulp(op, DType::F32, &xs32);
        max_ulp(op, DType::F32, &u32v);
    }
}

/// The GPU's expansions ([`Target::WGSL`]: no fused multiply-add, no scalar calls, so
/// `exp` without FMA and the trigonometric functions with their Payne-Hanek reduction for
/// huge arguments) keep every bound of `ULP_BOUNDS` and `BINARY_ULP_BOUNDS` over each
/// function's test domain (magnitudes across the whole exponent range and random bit
/// patterns included), run on the JIT; the interpreter gives the JIT's bits.
#[test]
fn wgsl_target_within_bounds() {
    use accuracy::{Engine, F};
    let mut rows = vec![];
    let mut check = |f: F, dt: DType, xs: &[f64], ys: &[f64], bound: u64| {
        let got = accuracy::run_for(f, dt, xs, ys, Engine::Jit, Target::WGSL);
        let u = match f {
            // The functions of `ulp_table`: its check (any NaN matches any NaN).
            F::U(op) if !accuracy::NEW_UNARY.contains(&op) => check_ulp(op, dt, xs, &got),
            // Those of `accuracy.rs`: its check (NaN signs are glibc's).
            _ => {
                let (u, x, y, g, w) = accuracy::measure_got(f, dt, xs, ys, &got);
                assert!(
                    u <= bound,
                    "{f:?}.{dt}({x:e}, {y:e}) = {g:e}, glibc {w:e}: {u} ulp > {bound}"
                );
                u
            }
        };
        rows.push(format!("| {f:?} | {dt} | {u} (bound {bound}) |"));
        // The interpreter on a sample (every 7th argument, the specials first).
        let (sx, sy): (Vec<f64>, Vec<f64>) = xs
            .iter()
            .zip(ys)
            .enumerate()
            .filter(|(i, _)| i % 7 == 0 || *i < 64)
            .map(|(_, (x, y))| (*x, *y))
            .unzip();
        let interp = accuracy::run_for(f, dt, &sx, &sy, Engine::Interp, Target::WGSL);
        let jit = accuracy::run_for(f, dt, &sx, &sy, Engine::Jit, Target::WGSL);
        for i in 0..sx.len() {
            assert_eq!(
                interp[i].to_bits(),
                jit[i].to_bits(),
                "{f:?}.{dt}({:e}, {:e})",
                sx[i],
                sy[i]
            );
        }
    };
    for (op, dt, bound) in ULP_BOUNDS {
        let xs = if accuracy::NEW_UNARY.contains(&op) {
            accuracy::domain(op, dt)
        } else {
            let mut rng = accuracy::Rng(0x5851F42D4C957F2D ^ op as u64);
            let mut v = domain(op, dt);
            v.extend(accuracy::specials());
            v.extend((0..20000).map(|_| rng.bits(dt == DType::F64)));
            accuracy::of_dtype(dt, v)
        };
        check(F::U(op), dt, &xs, &xs, bound);
    }
    for (op, dt, bound) in BINARY_ULP_BOUNDS {
        let (xs, ys) = accuracy::binary_domain(op, dt);
        check(F::B(op), dt, &xs, &ys, bound);
    }
    eprintln!("{}", rows.join("\n"));
}

/// The GPU's `sin`, `cos`, `tan` on the arguments closest to a multiple of pi/2 (the
/// hardest cases of its Payne-Hanek reduction, both signs) are within 1 ULP of the
/// correctly rounded result.
#[test]
fn wgsl_trig_of_the_hardest_arguments() {
    use accuracy::{Engine, F};
    let ops = [UnaryOp::Sin, UnaryOp::Cos, UnaryOp::Tan];
    let mut cases: Vec<(DType, f64, [f64; 3])> = vec![];
    for (m, e, r) in accuracy::TRIG_HARD_F64 {
        cases.push((DType::F64, m as f64 * 2f64.powi(e), r.map(f64::from_bits)));
    }
    for (m, e, r) in accuracy::TRIG_HARD_F32 {
        let r = r.map(|b| f32::from_bits(b) as f64);
        cases.push((DType::F32, m as f64 * 2f64.powi(e), r));
    }
    for dt in [DType::F64, DType::F32] {
        let (xs, want): (Vec<f64>, Vec<[f64; 3]>) = cases
            .iter()
            .filter(|c| c.0 == dt)
            .flat_map(|c| {
                // sin and tan are odd, cos is even.
                let neg = [-c.2[0], c.2[1], -c.2[2]];
                [(c.1, c.2), (-c.1, neg)]
            })
            .unzip();
        for (j, op) in ops.into_iter().enumerate() {
            let got = accuracy::run_for(F::U(op), dt, &xs, &xs, Engine::Jit, Target::WGSL);
            // For the record: glibc (the CPU's result there) on the same arguments.
            let glibc = (0..xs.len())
                .map(|i| {
                    let g = accuracy::truth(F::U(op), dt, xs[i], 0.0);
                    accuracy::ulp(g, want[i][j], dt == DType::F32)
                })
                .max()
                .unwrap_or(0);
            eprintln!("{op} {dt}: glibc up to {glibc} ULP from the correctly rounded result");
            for i in 0..xs.len() {
                let u = accuracy::ulp(got[i], want[i][j], dt == DType::F32);
                assert!(
                    u <= 1,
                    "{op}.{dt}({:e}) = {:e}, correctly rounded {:e}: {u} ulp",
                    xs[i],
                    got[i],
                    want[i][j]
                );
            }
        }
    }
}

/// The WGSL target's expansions need no scalar call and no fused multiply-add, and the
/// float32 ones no 64-bit integer.
#[test]
fn wgsl_target_uses_no_fallback_fma_or_int64_in_float32() {
    let mut fs: Vec<accuracy::F> = ULP_BOUNDS.iter().map(|b| accuracy::F::U(b.0)).collect();
    fs.extend(BINARY_ULP_BOUNDS.iter().map(|b| accuracy::F::B(b.0)));
    for f in fs {
        for dt in [DType::F64, DType::F32] {
            let k = accuracy::kernel_for(f, dt, Target::WGSL);
            let text = k.to_string();
            assert!(
                !text.contains("fallback") && !text.contains("fma."),
                "{f:?} {dt}:\n{k}"
            );
            if dt == DType::F32 {
                assert!(!k.insts.iter().any(|d| d.ty.size() == 8), "{f:?}:\n{k}");
            }
        }
    }
}

#[test]
fn log_within_one_ulp() {
    let mut xs = sweep(0.0, 10.0, 20001);
    xs.extend((0..2000).map(|i| 10f64.powf(-320.0 + i as f64 * 0.32)));
    max_ulp(UnaryOp::Log, DType::F64, &xs);
    let mut xs = sweep(0.0, 10.0, 20001);
    xs.extend((0..2000).map(|i| 10f64.powf(-44.0 + i as f64 * 0.04)));
    max_ulp(UnaryOp::Log, DType::F32, &xs);
}
