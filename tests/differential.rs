//! Differential tests: the CPU JIT (fused, and unfused one-kernel-per-operator) against the
//! reference evaluator, for every operator and function, every dtype it accepts, and every
//! layout: contiguous, strided, reversed, Fortran-order, broadcast, 0-d and empty.
//!
//! Tolerance: exact (bitwise; any NaN matches any NaN) for everything but the transcendental
//! functions, which may differ by at most [`TRANSCENDENTAL_ULP`] units in the last place.
mod common;
use common::*;
use fusebox::unstable::reference;
use fusebox::{BinaryOp, UnaryOp};
use fusebox::{DType, Device, DynArray, Expr, Options, Session};
use std::collections::HashMap;

/// Documented bound for transcendental functions (exp, log, sin, pow, ...) vs the oracle.
const TRANSCENDENTAL_ULP: u64 = 2;

fn sessions() -> Vec<(&'static str, Session)> {
    let mut v = vec![
        (
            "fused",
            Session::with_options(Options::default().with_device(Device::Cpu)),
        ),
        (
            "unfused",
            Session::with_options(
                Options::default()
                    .with_device(Device::Cpu)
                    .with_optimize(false),
            ),
        ),
    ];
    if gpu_available() {
        v.push((
            "gpu",
            Session::with_options(Options::default().with_device(Device::Gpu(0))),
        ));
    }
    v
}

/// The dtypes the WGSL backend has no code for yet (issue 17's integer types).
fn gpu_lacks(dt: DType) -> bool {
    !matches!(
        dt,
        DType::Bool | DType::I32 | DType::I64 | DType::F32 | DType::F64
    )
}

/// Whether GPU adapter 0 can be used. Without one the GPU engine is skipped with a printed
/// reason, unless `FUSEBOX_REQUIRE_GPU=1` (CI, on lavapipe), which turns that into a failure.
fn gpu_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
        match fusebox::unstable::gpu::GpuBackend::new(0) {
            Ok(_) => true,
            Err(e) if required => panic!("FUSEBOX_REQUIRE_GPU=1 but no usable GPU adapter: {e}"),
            Err(e) => {
                println!("differential: skipping the GPU engine: {e}");
                false
            }
        }
    })
}

/// The GPU's documented bound (`gpu::wgsl::ULP_BOUNDS`) for the worst transcendental in `e`.
fn gpu_ulp(e: &Expr) -> u64 {
    use fusebox::ExprKind;
    let bound = |name: &str, dt: DType| {
        fusebox::unstable::gpu::wgsl::ULP_BOUNDS
            .iter()
            .find(|b| b.0 == name)
            .map_or(0, |b| if dt == DType::F32 { b.2 } else { b.1 })
    };
    let dt = e.dtype().unwrap_or(DType::F64);
    match e.kind() {
        ExprKind::Unary(op, x) => bound(op.name(), dt).max(gpu_ulp(x)),
        ExprKind::Binary(op, a, b) => bound(op.name(), dt).max(gpu_ulp(a)).max(gpu_ulp(b)),
        ExprKind::Where(c, a, b) => gpu_ulp(c).max(gpu_ulp(a)).max(gpu_ulp(b)),
        ExprKind::Cast(_, x) | ExprKind::Reduce(_, x, _) => gpu_ulp(x),
        _ => 0,
    }
}

/// Evaluate `e` on every session and compare with the reference evaluator. When the oracle
/// returns an error, every session must return an error too.
fn check(what: &str, e: &Expr, ulp: u64, sessions: &[(&str, Session)]) {
    let oracle = reference::evaluate(e, &HashMap::new());
    for (name, s) in sessions {
        let ours = s.compute(e);
        let ulp = if *name == "gpu" {
            ulp.max(gpu_ulp(e))
        } else {
            ulp
        };
        match (&ours, &oracle) {
            (Ok(a), Ok(b)) => assert_agree(&format!("{what} [{name}] {e}"), a, b, ulp),
            (Err(_), Err(_)) => {}
            (Ok(a), Err(err)) => panic!("{what} [{name}] {e}: oracle error {err}, ours {a:?}"),
            // An adapter without f64/i64 refuses those dtypes (documented); nothing else may fail.
            (Err(fusebox::Error::UnsupportedDtype { .. }), Ok(_)) if *name == "gpu" => {}
            (Err(err), Ok(b)) => panic!("{what} [{name}] {e}: our error {err}, oracle {b:?}"),
        }
    }
}

fn unary_ulp(op: UnaryOp) -> u64 {
    if op.is_transcendental() && op != UnaryOp::Sqrt {
        TRANSCENDENTAL_ULP
    } else {
        0
    }
}

fn binary_ulp(op: BinaryOp) -> u64 {
    match op {
        BinaryOp::Pow | BinaryOp::Arctan2 | BinaryOp::Hypot => TRANSCENDENTAL_ULP,
        _ => 0,
    }
}

const SHAPES: [&[usize]; 6] = [&[37], &[5, 7], &[], &[0], &[3, 0], &[2, 3, 4]];

#[test]
fn unary_ops_every_dtype_and_layout() {
    let ss = sessions();
    for op in UnaryOp::ALL {
        for dt in DType::ALL {
            for (si, shape) in SHAPES.iter().enumerate() {
                for layout in LAYOUTS {
                    if layout != Layout::Contiguous && si > 1 {
                        continue;
                    }
                    let what = format!("{op} {dt} {shape:?} {layout:?}");
                    let a = Expr::data(array(dt, shape, layout, 2 * si as u64), Some("a"));
                    check(&what, &Expr::unary(op, a), unary_ulp(op), &ss);
                    // Without the edge values (1e300 ...): inside every engine's domain.
                    let a = Expr::data(array(dt, shape, layout, 2 * si as u64 + 1), Some("a"));
                    check(&what, &Expr::unary(op, a), unary_ulp(op), &ss);
                }
            }
        }
    }
}

#[test]
fn binary_ops_every_dtype_pair() {
    let ss = sessions();
    for op in BinaryOp::ALL {
        for da in DType::ALL {
            for db in DType::ALL {
                for (layout, shape) in [
                    (Layout::Contiguous, &[37][..]),
                    (Layout::Strided, &[5, 7][..]),
                ] {
                    let a = Expr::data(array(da, shape, layout, 2), Some("a"));
                    let b = Expr::data(array(db, shape, Layout::Reversed, 4), Some("b"));
                    check(
                        &format!("{op} {da} {db} {layout:?}"),
                        &Expr::binary(op, a, b),
                        binary_ulp(op),
                        &ss,
                    );
                }
            }
        }
    }
}

#[test]
fn binary_ops_broadcast_and_zero_d() {
    let ss = sessions();
    for op in BinaryOp::ALL {
        for dt in [DType::I32, DType::F32, DType::F64, DType::Bool] {
            let col = Expr::data(array(dt, &[5, 1], Layout::Contiguous, 2), Some("col"));
            let row = Expr::data(array(dt, &[7], Layout::Strided, 4), Some("row"));
            let zero_d = Expr::data(array(dt, &[], Layout::Contiguous, 6), Some("z"));
            let ulp = binary_ulp(op);
            check(
                &format!("{op} {dt} col*row"),
                &Expr::binary(op, col.clone(), row.clone()),
                ulp,
                &ss,
            );
            check(
                &format!("{op} {dt} z*row"),
                &Expr::binary(op, zero_d.clone(), row),
                ulp,
                &ss,
            );
            check(
                &format!("{op} {dt} col*z"),
                &Expr::binary(op, col, zero_d),
                ulp,
                &ss,
            );
        }
    }
}

#[test]
fn weak_scalars_on_either_side() {
    let ss = sessions();
    let scalars = [
        Expr::from(2.5),
        Expr::from(-3i64),
        Expr::from(true),
        Expr::from(0.0),
        Expr::from(7i64),
    ];
    for op in BinaryOp::ALL {
        for dt in DType::ALL {
            let a = Expr::data(array(dt, &[37], Layout::Contiguous, 2), Some("a"));
            for s in &scalars {
                let ulp = binary_ulp(op);
                check(
                    &format!("{op} {dt} a,{s}"),
                    &Expr::binary(op, a.clone(), s.clone()),
                    ulp,
                    &ss,
                );
                check(
                    &format!("{op} {dt} {s},a"),
                    &Expr::binary(op, s.clone(), a.clone()),
                    ulp,
                    &ss,
                );
            }
        }
    }
}

#[test]
fn casts_between_every_pair() {
    let ss = sessions();
    for from in DType::ALL {
        for to in DType::ALL {
            for layout in LAYOUTS {
                let a = Expr::data(array(from, &[5, 7], layout, 2), Some("a"));
                check(
                    &format!("astype {from}->{to} {layout:?}"),
                    &a.astype(to),
                    0,
                    &ss,
                );
            }
        }
    }
}

#[test]
fn where_selects_with_broadcasting() {
    let ss = sessions();
    for dt in DType::ALL {
        let a = Expr::data(array(dt, &[5, 7], Layout::Fortran, 2), Some("a"));
        let b = Expr::data(array(dt, &[7], Layout::Reversed, 4), Some("b"));
        let c = Expr::data(
            array(DType::Bool, &[5, 1], Layout::Contiguous, 6),
            Some("c"),
        );
        check(
            &format!("where {dt}"),
            &fusebox::where_(c.clone(), a.clone(), b.clone()),
            0,
            &ss,
        );
        check(
            &format!("where {dt} scalar"),
            &fusebox::where_(a.gt(0), a.clone(), 0),
            0,
            &ss,
        );
        // A non-bool condition means `!= 0`, as in np.where.
        check(
            &format!("where {dt} nonbool"),
            &fusebox::where_(a.clone(), 1.5, b),
            0,
            &ss,
        );
    }
}

/// Sums: the reference uses NumPy's pairwise algorithm; the JIT sums in another order, so
/// floats are compared with a relative bound (integers exactly, with wrap-around).
#[test]
fn sum_every_dtype_and_layout() {
    for (name, s) in sessions() {
        for dt in DType::ALL {
            for (si, shape) in SHAPES.iter().enumerate() {
                for layout in LAYOUTS {
                    // Odd seeds: finite values only, so the sum is a number to compare.
                    let arr = array(dt, shape, layout, 2 * si as u64 + 1);
                    let e = Expr::data(arr.clone(), Some("a")).sum();
                    let ours = match s.compute(&e) {
                        // The WGSL backend lacks these dtypes: a pinned GPU refuses them.
                        Err(fusebox::Error::UnsupportedDtype { dtype, .. })
                            if name == "gpu" && gpu_lacks(dt) =>
                        {
                            assert_eq!(dtype, dt.name());
                            continue;
                        }
                        r => r.unwrap(),
                    };
                    let oracle = reference::evaluate(&e, &HashMap::new()).unwrap();
                    assert_eq!(ours.dtype(), oracle.dtype());
                    assert_eq!(ours.shape(), &[] as &[usize]);
                    let (x, y) = (ours.scalar_f64().unwrap(), oracle.scalar_f64().unwrap());
                    // Summation error bound: a small multiple of eps * sum(|v|).
                    let abs_sum: f64 = typed_abs_sum(&arr);
                    let tol = match dt {
                        DType::F64 => 1e-13 * abs_sum,
                        DType::F32 => 1e-5 * abs_sum,
                        _ => 0.0,
                    };
                    assert!(
                        (x - y).abs() <= tol,
                        "[{name}] sum {dt} {shape:?} {layout:?}: {x} vs {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn seed_expressions_and_compound_trees() {
    let ss = sessions();
    let x = Expr::data(array(DType::F64, &[1001], Layout::Contiguous, 3), Some("x"));
    let a = Expr::data(array(DType::F64, &[1001], Layout::Strided, 5), Some("a"));
    let b = Expr::data(
        array(DType::F64, &[1001], Layout::Contiguous, 7).clone(),
        Some("b"),
    );
    let i = Expr::data(array(DType::I32, &[1001], Layout::Reversed, 9), Some("i"));
    let f = Expr::data(
        array(DType::F32, &[1001], Layout::Contiguous, 11),
        Some("f"),
    );
    let (mu, sigma) = (-1.33, 1.25);
    let cases: Vec<(&str, Expr, u64)> = vec![
        ("poly", (5.0 * &x + 4.0) * &x + 1.0, 0),
        (
            "gauss",
            1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt())
                * (-(&x - mu).pow(2.0) / (2.0 * sigma * sigma)).exp(),
            TRANSCENDENTAL_ULP,
        ),
        ("two", 2.0 * &a + 3.0 * &b * &b - &a / &b, 0),
        ("mixed", (&i * 3 + 1).astype(DType::F32) * &f - &i / 7, 0),
        (
            "where chain",
            fusebox::where_(x.gt(0.0) & a.lt(&b), x.sqrt(), -a.abs()),
            0,
        ),
        (
            "shared subtree",
            {
                let t = (&x - &a).exp();
                &t * &t + t.sin()
            },
            4,
        ),
        // Values k/8: every partial sum is exact, so any summation order gives NumPy's bits.
        (
            "reduce then map",
            {
                let q = (&x * 8.0).floor() / 8.0;
                &q - q.sum() / 1001.0
            },
            0,
        ),
        ("int chain", (&i * &i).floor_div(3) % 5 + (&i << 2i64), 0),
    ];
    for (name, e, ulp) in &cases {
        check(name, e, *ulp, &ss);
    }
}

#[test]
fn results_have_numpy_dtypes() {
    let s = Session::new();
    let f32a = Expr::data(array(DType::F32, &[3], Layout::Contiguous, 1), None);
    let i32a = Expr::data(array(DType::I32, &[3], Layout::Contiguous, 1), None);
    let cases: Vec<(Expr, DType)> = vec![
        (&f32a * 2.0, DType::F32),
        (&i32a / &i32a, DType::F64),
        (&i32a + &f32a, DType::F64),
        (&i32a + 1, DType::I32),
        (i32a.sum(), DType::I64),
        (f32a.sum(), DType::F32),
        (i32a.sqrt(), DType::F64),
        (i32a.floor(), DType::I32),
    ];
    for (e, dt) in cases {
        let r: DynArray = s.compute(&e).unwrap();
        assert_eq!(r.dtype(), dt, "{e}");
    }
}

fn typed_abs_sum(a: &DynArray) -> f64 {
    match a {
        DynArray::F64(x) => x.iter().map(|v| v.abs()).sum(),
        DynArray::F32(x) => x.iter().map(|v| v.abs() as f64).sum(),
        _ => 0.0,
    }
}

/// Every reduction (kernel-level ops and mean/var/std) over every dtype, shape, axis set,
/// keepdims and layout, on every engine, against the reference evaluator. Integer, bool,
/// min/max and arg results are exact; float sums, products and statistics are compared with a
/// relative bound (the engines sum in another order than NumPy's pairwise sum). Errors (empty
/// min/max, bad axes) must agree.
#[test]
fn reductions_every_op_dtype_axis_and_layout() {
    use fusebox::{ReduceOp, Reduction};
    let ss = sessions();
    let mut reductions: Vec<Reduction> = ReduceOp::ALL.iter().map(|&o| Reduction::Op(o)).collect();
    reductions.extend([
        Reduction::Mean,
        Reduction::Var { ddof: 0 },
        Reduction::Std { ddof: 1 },
    ]);
    let axes_for = |ndim: usize| -> Vec<Option<Vec<isize>>> {
        let mut v = vec![None];
        for d in 0..ndim as isize {
            v.push(Some(vec![d]));
        }
        if ndim >= 2 {
            v.push(Some(vec![-1]));
            v.push(Some(vec![0, ndim as isize - 1]));
        }
        if ndim == 3 {
            v.push(Some(vec![2, 0, 1]));
        }
        v
    };
    let shapes: [&[usize]; 7] = [&[37], &[5, 7], &[], &[0], &[3, 0], &[2, 3, 4], &[300, 3]];
    for r in &reductions {
        for dt in DType::ALL {
            for (si, shape) in shapes.iter().enumerate() {
                for layout in LAYOUTS {
                    if layout != Layout::Contiguous && !matches!(si, 1 | 5 | 6) {
                        continue;
                    }
                    // Even seeds carry the edge values (NaN, inf, extremes), odd ones do not.
                    for seed in [2 * si as u64, 2 * si as u64 + 1] {
                        let arr = array(dt, shape, layout, seed);
                        let a = Expr::data(arr.clone(), Some("a"));
                        for axes in axes_for(shape.len()) {
                            for keepdims in [false, true] {
                                let e = a.reduce(*r, axes.as_deref(), keepdims);
                                let what = format!("{r} {dt} {shape:?} {layout:?} seed {seed}");
                                check_reduction(&what, &e, &arr, *r, &ss);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn check_reduction(
    what: &str,
    e: &Expr,
    input: &DynArray,
    r: fusebox::Reduction,
    sessions: &[(&str, Session)],
) {
    use fusebox::{ReduceOp, Reduction};
    let oracle = reference::evaluate(e, &HashMap::new());
    for (name, s) in sessions {
        let ours = s.compute(e);
        let (a, b) = match (&ours, &oracle) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(_), Err(_)) => continue,
            (Err(fusebox::Error::UnsupportedDtype { .. }), Ok(_)) if *name == "gpu" => continue,
            (Ok(a), Err(err)) => panic!("{what} [{name}] {e}: oracle error {err}, ours {a:?}"),
            (Err(err), Ok(b)) => panic!("{what} [{name}] {e}: our error {err}, oracle {b:?}"),
        };
        let inexact = matches!(
            r,
            Reduction::Op(ReduceOp::Sum | ReduceOp::Prod)
                | Reduction::Mean
                | Reduction::Var { .. }
                | Reduction::Std { .. }
        ) && b.dtype().is_float();
        if !inexact {
            assert_agree(&format!("{what} [{name}] {e}"), a, b, 0);
            continue;
        }
        assert_eq!(a.dtype(), b.dtype(), "{what} [{name}] {e}: dtype");
        assert_eq!(a.shape(), b.shape(), "{what} [{name}] {e}: shape");
        // Scale of the rounding error: the largest magnitude involved (squared for var).
        let big = typed_max_abs(input);
        let scale = match r {
            Reduction::Var { .. } => big * big,
            _ => big,
        };
        let n = input.len().max(1) as f64;
        let prod_can_leave_range = {
            let (max, min_pos) = match b.dtype() {
                DType::F32 => (f32::MAX as f64, f32::MIN_POSITIVE as f64),
                DType::F16 => (65504.0, 6.103515625e-5),
                _ => (f64::MAX, f64::MIN_POSITIVE),
            };
            let v = to_f64(input);
            let small = v
                .iter()
                .filter(|x| x.is_finite())
                .fold(f64::INFINITY, |m, x| m.min(x.abs()));
            big.powf(n) > max && small.powf(n) < min_pos
        };
        // float16: NumPy rounds to float16 after each inner run (every row along axis 0), the
        // JIT once; each rounding is 2^-11 relative.
        let rel = match b.dtype() {
            DType::F32 => 1e-5,
            DType::F16 => 1e-3,
            _ => 1e-13,
        };
        let (xs, ys) = (to_f64(a), to_f64(b));
        for (i, (x, y)) in xs.iter().zip(&ys).enumerate() {
            let ok = x == y
                || (x.is_nan() && y.is_nan())
                || (x - y).abs() <= rel * n * scale.max(y.abs())
                || (matches!(r, Reduction::Op(ReduceOp::Prod))
                    && ((x - y).abs() <= 1e-12 * n * y.abs().max(f64::MIN_POSITIVE)
                        // Order-dependent: when partial products can leave the float range
                        // (overflow in one part, underflow or a zero in another), a tree order
                        // gives inf * 0 = NaN where NumPy's left-to-right order gives 0, inf
                        // or a finite value.
                        || (x.is_nan() && prod_can_leave_range)));
            assert!(ok, "{what} [{name}] {e}: [{i}] ours {x:e} oracle {y:e}");
        }
    }
}

fn typed_max_abs(a: &DynArray) -> f64 {
    to_f64(a)
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0, |m, v| m.max(v.abs()))
}

fn to_f64(a: &DynArray) -> Vec<f64> {
    match a {
        DynArray::F64(x) => x.iter().copied().collect(),
        DynArray::F32(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::I64(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::I8(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::I16(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::U8(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::U16(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::U32(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::U64(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::F16(x) => x.iter().map(|&v| v.to_f64()).collect(),
        DynArray::I32(x) => x.iter().map(|&v| v as f64).collect(),
        DynArray::Bool(x) => x.iter().map(|&v| v as u8 as f64).collect(),
    }
}

/// `compute_many` gives each expression's own result, whichever kernels they share.
#[test]
fn compute_many_agrees_with_one_at_a_time() {
    let ss = sessions();
    // Multiples of 1/8 of moderate size: every partial sum is exact, so any summation order
    // gives the oracle's bits and the comparison can be exact.
    let eighths = |n: usize, k: usize| -> Vec<f64> {
        (0..n)
            .map(|i| ((i * k) % 203) as f64 / 8.0 - 12.0)
            .collect()
    };
    let xs = ndarray::Array1::from(eighths(2002, 7));
    // Every second element: a strided input.
    let x = Expr::data(xs.into_shared().slice_move(ndarray::s![..;2]), Some("x"));
    let ms = ndarray::Array2::from_shape_vec(
        (25, 40),
        eighths(1000, 11).iter().map(|v| *v as f32).collect(),
    )
    .unwrap();
    let m = Expr::data(ms.reversed_axes(), Some("m"));
    use fusebox::{ReduceOp, Reduction};
    let exprs = vec![
        x.min(),
        x.max(),
        x.sum(),
        (&x * 2.0).exp(),
        &x - x.mean(),
        m.reduce(Reduction::Op(ReduceOp::Max), Some(&[1]), false),
        m.reduce(Reduction::Op(ReduceOp::ArgMin), Some(&[0]), true),
        m.reduce(Reduction::Mean, Some(&[1]), false),
    ];
    for (name, s) in &ss {
        let many = s.compute_many(&exprs).unwrap();
        for (e, got) in exprs.iter().zip(&many) {
            let one = reference::evaluate(e, &HashMap::new()).unwrap();
            // exp: the engine's documented bound; everything else exact.
            let ulp = if *name == "gpu" {
                gpu_ulp(e)
            } else {
                TRANSCENDENTAL_ULP
            };
            assert_agree(&format!("[{name}] compute_many {e}"), got, &one, ulp);
        }
    }
}
