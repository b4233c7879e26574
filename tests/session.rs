//! Session behaviour: binding symbols, compiled functions, kernel caching, counters, and the
//! typed errors bad input gets.
mod common;
use common::*;
use fusebox::{DType, Device, DynArray, Error, Expr, Options, Session};
use ndarray::{arr1, Array1, ArrayD, IxDyn};

fn poly_expected(x: &[f64]) -> Vec<f64> {
    x.iter().map(|t| (5.0 * t + 4.0) * t + 1.0).collect()
}

#[test]
fn compute_binds_symbols_to_views_of_any_layout() {
    let s = Session::new();
    let x = s.symbol("x", DType::F64, &[4]);
    let poly = (5.0 * &x + 4.0) * &x + 1.0;
    let data = Array1::linspace(-2.0, 2.0, 8);
    // A strided view: every second element, not copied.
    let view = data.slice(ndarray::s![..;2]);
    let r = s
        .compute_with(&poly, &[("x", view.into())])
        .unwrap()
        .into_f64()
        .unwrap();
    let xs: Vec<f64> = view.iter().copied().collect();
    assert_eq!(r.iter().copied().collect::<Vec<_>>(), poly_expected(&xs));
}

#[test]
fn second_compute_compiles_nothing() {
    let s = Session::new();
    let x = s.named_data("x", Array1::linspace(0.0, 1.0, 1000));
    let e = (5.0 * &x + 4.0) * &x + 1.0;
    let first = s.compute(&e).unwrap();
    let after_first = s.stats();
    assert_eq!(after_first.compilations, 1);
    let second = s.compute(&e).unwrap();
    let after_second = s.stats();
    assert_eq!(
        after_second.compilations, 1,
        "no compilation the second time"
    );
    assert_eq!(after_second.cache_hits, after_first.cache_hits + 1);
    assert_eq!(first, second);
    assert_eq!(after_second.kernels_launched, 2);
    assert_eq!(after_second.bytes_read, 2 * 8000);
    assert_eq!(after_second.bytes_written, 2 * 8000);
}

#[test]
fn compiled_function_runs_on_new_arrays_and_shapes() {
    let s = Session::new();
    let a = s.symbol("a", DType::F64, &[3]);
    let b = s.symbol("b", DType::F64, &[3]);
    let f = s.compile(&(2.0 * &a + 3.0 * &b * &b - &a / &b)).unwrap();
    assert_eq!(
        f.params().iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let compiled = s.stats().compilations;
    for n in [3usize, 10, 1, 0] {
        let av = Array1::from_iter((0..n).map(|i| i as f64 - 1.5));
        let bv = Array1::from_iter((0..n).map(|i| 1.0 + i as f64 / 8.0));
        let r = f
            .call(&[(&av).into(), (&bv).into()])
            .unwrap()
            .into_f64()
            .unwrap();
        let want: Vec<f64> = av
            .iter()
            .zip(&bv)
            .map(|(a, b)| 2.0 * a + 3.0 * b * b - a / b)
            .collect();
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), want, "n = {n}");
    }
    // Broadcasting at call time: a (2,1) against b (3,).
    let av = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![1.0, 2.0]).unwrap();
    let bv = arr1(&[1.0, 2.0, 4.0]);
    let r = f.call(&[(&av).into(), (&bv).into()]).unwrap();
    assert_eq!(r.shape(), &[2, 3]);
    assert_eq!(
        s.stats().compilations,
        compiled,
        "new shapes re-plan but compile nothing"
    );
}

#[test]
fn reference_device_and_unfused_mode_agree_with_fused() {
    let x = Expr::data(array(DType::F64, &[100], Layout::Contiguous, 1), Some("x"));
    let e = (&x * &x).sum() + (&x * 0.001 + 0.5).exp().sum();
    let fused = Session::new().compute(&e).unwrap();
    let unfused = Session::with_options(Options::default().with_optimize(false))
        .compute(&e)
        .unwrap();
    let reference = Session::with_options(Options::default().with_device(Device::Reference))
        .compute(&e)
        .unwrap();
    let (a, b, c) = (
        fused.scalar_f64().unwrap(),
        unfused.scalar_f64().unwrap(),
        reference.scalar_f64().unwrap(),
    );
    assert!(
        (a - c).abs() <= 1e-12 * c.abs() && (b - c).abs() <= 1e-12 * c.abs(),
        "{a} {b} {c}"
    );
}

#[test]
fn unfused_mode_launches_one_kernel_per_operator() {
    let s = Session::with_options(Options::default().with_optimize(false));
    let x = s.named_data("x", Array1::<f64>::zeros(10));
    s.compute(&((5.0 * &x + 4.0) * &x + 1.0)).unwrap();
    let st = s.stats();
    assert_eq!(st.kernels_launched, 4);
    assert_eq!(st.bytes_read + st.bytes_written, 72 * 10);
}

#[test]
fn seed_sum_of_small_data() {
    // The seed's `data.a.sum()` on [1, 2, 3] is 6, an int64.
    let s = Session::new();
    let a = s.named_data("a", arr1(&[1i64, 2, 3]));
    let r = s.compute(&a.sum()).unwrap();
    assert_eq!(r, DynArray::from(ndarray::arr0(6i64)));
}

#[test]
fn errors_are_typed_and_name_the_problem() {
    let s = Session::new();
    let x = s.symbol("x", DType::F64, &[3]);
    // Unknown name: a symbol never bound.
    match s.compute(&(&x + 1.0)) {
        Err(Error::UnknownName { name, known }) => {
            assert_eq!(name, "x");
            assert!(known.is_empty(), "{known:?}");
        }
        other => panic!("{other:?}"),
    }
    // Shape mismatch, with both shapes, at call time.
    let y = s.symbol("y", DType::F64, &[3]);
    let f = s.compile(&(&x + &y)).unwrap();
    let (a, b) = (Array1::<f64>::zeros(3), Array1::<f64>::zeros(4));
    match f.call(&[(&a).into(), (&b).into()]) {
        Err(Error::ShapeMismatch { lhs, rhs }) => assert_eq!((lhs, rhs), (vec![3], vec![4])),
        other => panic!("{other:?}"),
    }
    // Wrong dtype and arity.
    let i = Array1::<i32>::zeros(3);
    assert!(matches!(
        f.call(&[(&a).into(), (&i).into()]),
        Err(Error::DtypeMismatch { name, expected: DType::F64, found: DType::I32 }) if name == "y"
    ));
    assert!(matches!(
        f.call(&[(&a).into()]),
        Err(Error::ArgumentCount {
            expected: 2,
            found: 1,
            ..
        })
    ));
    // An operator NumPy rejects.
    let bools = s.data(arr1(&[true, false]));
    assert!(matches!(
        s.compute(&(&bools - &bools)),
        Err(Error::OperandType { op, dtype: DType::Bool, .. }) if op == "sub"
    ));
    // NEP 50: a literal that does not fit int32.
    let ints = s.data(arr1(&[1i32, 2]));
    assert!(matches!(
        s.compute(&(&ints + 5_000_000_000i64)),
        Err(Error::IntegerOverflow { .. })
    ));
    // A GPU adapter that does not exist: a clear device error, not a crash.
    let g = Session::with_options(Options::default().with_device(Device::Gpu(99)));
    assert!(matches!(g.compute(&(&ints + 1)), Err(Error::Device { .. })));
}

#[test]
fn deep_expressions_are_refused_not_crashed() {
    let s = Session::new();
    let x = s.named_data("x", arr1(&[1.0]));
    let mut e = x.clone();
    for _ in 0..5000 {
        e = e + 1.0;
    }
    assert!(matches!(s.compute(&e), Err(Error::TooDeep { .. })));
}

/// The multi-output example: `min(x)`, `max(x)`, `sum(x)` in one kernel that reads `x`
/// once; the explain bytes and the measured counters agree.
#[test]
fn compute_many_reads_x_once() {
    let n = 100_000usize;
    let s = Session::with_options(Options::default().with_device(Device::Cpu));
    let data: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 - 500.5).collect();
    let x = s.named_data("x", Array1::from(data.clone()));
    let exprs = [x.min(), x.max(), x.sum()];
    let ex = s.explain_many_with(&exprs, &[]).unwrap();
    assert_eq!(ex.kernels.len(), 1, "{ex}");
    assert_eq!(ex.bytes_fused, 8 * n as u64 + 3 * 8, "{ex}");
    let before = s.stats();
    let r = s.compute_many(&exprs).unwrap();
    let after = s.stats();
    assert_eq!(after.kernels_launched - before.kernels_launched, 1);
    assert_eq!(after.bytes_read - before.bytes_read, 8 * n as u64);
    assert_eq!(after.bytes_written - before.bytes_written, 3 * 8);
    let min = data.iter().copied().fold(f64::INFINITY, f64::min);
    let max = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Every partial sum of these half-integers is exact, so any order gives the same bits.
    let sum: f64 = data.iter().sum();
    let got: Vec<f64> = r.iter().map(|a| a.scalar_f64().unwrap()).collect();
    assert_eq!(got, vec![min, max, sum]);
}

/// `(x - mean(x)) / std(x)`: three kernels (sum, sum of squared deviations, the map), each
/// reading `x` once, no temporary of `x`'s size; the result matches the two-pass formula.
#[test]
fn standardization_plan_and_result() {
    let n = 10_001usize;
    let s = Session::with_options(Options::default().with_device(Device::Cpu));
    let data: Vec<f64> = (0..n).map(|i| ((i * 31) % 97) as f64 * 0.25).collect();
    let x = s.named_data("x", Array1::from(data.clone()));
    let e = (&x - x.mean()) / x.std();
    let ex = s.explain(&e).unwrap();
    assert_eq!(ex.kernels.len(), 3, "{ex}");
    let before = s.stats();
    let r = s.compute(&e).unwrap().into_f64().unwrap();
    let after = s.stats();
    assert_eq!(after.kernels_launched - before.kernels_launched, 3);
    assert_eq!(
        after.bytes_written - before.bytes_written,
        8 * n as u64 + 16
    );
    let mean = data.iter().sum::<f64>() / n as f64;
    let var = data.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    for (got, v) in r.iter().zip(&data) {
        let want = (v - mean) / var.sqrt();
        assert!(
            (got - want).abs() <= 1e-13 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
}
