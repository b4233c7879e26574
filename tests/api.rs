//! The user-facing API of issue 18: typed results that move (no copy), numexpr strings from
//! code, arithmetic with every Rust scalar type, the axis shorthands, plan caches. Oracles: the
//! reference evaluator (`Device::Reference`), exact math, and NumPy's rules.
mod common;
use common::assert_agree;
use fusebox::{
    clip, functions, maximum, where_, ArgView, DType, Device, DynArray, Error, Expr, Options,
    Session,
};
use ndarray::{arr1, array, Array1, Array2, ArrayD, Ix0, Ix1, Ix2, IxDyn};

fn reference() -> Session {
    Session::with_options(Options::default().with_device(Device::Reference))
}

fn cpu() -> Session {
    Session::with_options(Options::default().with_device(Device::Cpu))
}

// ---- typed results ----------------------------------------------------------------------

#[test]
fn typed_results_move_the_buffer() {
    let s = cpu();
    let x = s.data(Array1::linspace(0.0, 1.0, 1000));
    let e = (5.0 * &x + 4.0) * &x + 1.0;
    // into_array::<T, D>: the data pointer of the result is the pointer of the typed array.
    let r = s.compute(&e).unwrap();
    let p = r.as_array::<f64>().unwrap().as_ptr();
    let y: Array1<f64> = r.into_array().unwrap();
    assert_eq!(y.as_ptr(), p, "into_array moved the buffer");
    // into_f64 moves too.
    let r = s.compute(&e).unwrap();
    let p = r.as_array::<f64>().unwrap().as_ptr();
    assert_eq!(
        r.into_f64().unwrap().as_ptr(),
        p,
        "into_f64 moved the buffer"
    );
    // A result still shared (a clone alive) is copied once, and stays correct.
    let r = s.compute(&e).unwrap();
    let keep = r.clone();
    let p = r.as_array::<f64>().unwrap().as_ptr();
    let y: Array1<f64> = r.into_array().unwrap();
    assert_ne!(y.as_ptr(), p);
    assert_eq!(&y.into_dyn(), &keep.as_array::<f64>().unwrap().to_owned());
    // compute_as: typed in one line, values as the math says.
    let z: Array1<f64> = s.compute_as(&(&x * 2.0)).unwrap();
    let want = Array1::linspace(0.0, 1.0, 1000).mapv(|v| v * 2.0);
    assert_eq!(z, want);
}

#[test]
fn typed_result_errors_are_fusebox_errors() {
    let s = cpu();
    let x = s.data(array![[1.0, 2.0], [3.0, 4.0]]);
    // Wrong rank: Error::Rank with the shape.
    match s.compute_as::<f64, Ix1>(&(&x + 1.0)) {
        Err(Error::Rank { expected, shape }) => assert_eq!((expected, shape), (1, vec![2, 2])),
        other => panic!("{other:?}"),
    }
    // Wrong dtype: DtypeMismatch.
    match s.compute_as::<f32, Ix2>(&(&x + 1.0)) {
        Err(Error::DtypeMismatch {
            expected, found, ..
        }) => assert_eq!((expected, found), (DType::F32, DType::F64)),
        other => panic!("{other:?}"),
    }
    let ok: Array2<f64> = s.compute_as(&(&x + 1.0)).unwrap();
    assert_eq!(ok, array![[2.0, 3.0], [4.0, 5.0]]);
    // ndarray's ShapeError converts with `?`.
    fn reshape_it(a: ArrayD<f64>) -> fusebox::Result<Array2<f64>> {
        Ok(a.into_shape_with_order((3, 3))?
            .into_dimensionality::<Ix2>()?)
    }
    assert!(matches!(
        reshape_it(ArrayD::zeros(IxDyn(&[4]))),
        Err(Error::Layout { .. })
    ));
}

#[test]
fn scalars_are_results() {
    let s = cpu();
    let x = s.data(arr1(&[1.0, 2.0, 3.5]));
    assert_eq!(s.compute(&x.sum()).unwrap().scalar::<f64>().unwrap(), 6.5);
    let i = s.data(arr1(&[1i32, 2, 3]));
    let total = s.compute(&i.sum()).unwrap();
    // NumPy: the sum of int32 is int64.
    assert_eq!(total.scalar::<i64>().unwrap(), 6);
    assert!(matches!(
        total.scalar::<f64>(),
        Err(Error::DtypeMismatch { .. })
    ));
    let v = s.compute(&(&x * 1.0)).unwrap();
    assert!(matches!(
        v.scalar::<f64>(),
        Err(Error::Rank { expected: 0, .. })
    ));
    let m = s.compute_as::<f64, Ix0>(&x.max()).unwrap();
    assert_eq!(m.into_scalar(), 3.5);
}

#[test]
fn arg_views_from_shared_arrays_and_views() {
    let s = cpu();
    let shared = Array1::linspace(0.0, 3.0, 4).into_shared();
    let t = s.symbol("t", DType::F64, &[4]);
    let r = s
        .compute_with(&(&t * 2.0), &[("t", (&shared).into())])
        .unwrap();
    assert_eq!(
        r.into_f64().unwrap().as_slice().unwrap(),
        &[0.0, 2.0, 4.0, 6.0]
    );
    let v = shared.view();
    let a: ArgView<'_> = (&v).into();
    assert_eq!(a.shape(), &[4]);
}

// ---- numexpr strings from code ----------------------------------------------------------

#[test]
fn evaluate_resolves_names_against_bindings() {
    let s = cpu();
    let a = Array1::linspace(-1.0, 1.0, 101);
    let b = Array1::linspace(0.0, 3.0, 101);
    let bind: [(&str, ArgView<'_>); 2] = [("a", (&a).into()), ("b", (&b).into())];
    let got = s.evaluate("2*a + sin(b)**2 + pi", &bind).unwrap();
    // Oracle: the reference evaluator on the same expression built in Rust.
    let r = reference();
    let (ea, eb) = (r.data(a.clone()), r.data(b.clone()));
    let want = r
        .compute(&(2.0 * &ea + functions::sin(&eb).pow(2) + std::f64::consts::PI))
        .unwrap();
    assert_eq!(got.dtype(), DType::F64);
    assert_agree("evaluate", &got, &want, 8);
    // Unknown names list the bound ones.
    match s.evaluate("a + c", &bind) {
        Err(Error::UnknownName { name, known }) => {
            assert_eq!(name, "c");
            assert_eq!(known, ["a", "b"]);
        }
        other => panic!("{other:?}"),
    }
    // Several expressions need evaluate_many.
    assert!(matches!(
        s.evaluate("a; b", &bind),
        Err(Error::Argument { .. })
    ));
}

#[test]
fn evaluate_many_is_one_plan_like_the_cli() {
    let s = cpu();
    let x = Array1::linspace(-2.0, 5.0, 1000);
    let bind = [("x", ArgView::from(&x))];
    let before = s.stats();
    let got = s.evaluate_many("min(x); max(x); sum(x*x)", &bind).unwrap();
    let after = s.stats();
    assert_eq!(after.plans - before.plans, 1, "one plan");
    assert_eq!(
        after.kernels_launched - before.kernels_launched,
        1,
        "min, max and sum read x in one kernel"
    );
    assert_eq!(got[0].scalar::<f64>().unwrap(), -2.0);
    assert_eq!(got[1].scalar::<f64>().unwrap(), 5.0);
    let r = reference();
    let xr = r.data(x.clone());
    let want = r.compute(&(&xr * &xr).sum()).unwrap();
    let summed = r.compute(&(&xr * &xr)).unwrap();
    common::sum_agree(&got[2], &want, &summed).unwrap();
    // A syntax error's column counts from the start of the whole string.
    match s.evaluate_many("x + 1; x +* 2", &bind) {
        Err(Error::Parse { column, .. }) => assert!(column > 7, "column {column}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn repeated_evaluate_reuses_its_plan() {
    let s = cpu();
    let x = Array1::linspace(0.0, 1.0, 100);
    let bind = [("x", ArgView::from(&x))];
    let first = s.evaluate("x * 3 + 1", &bind).unwrap();
    let plans = s.stats().plans;
    for _ in 0..5 {
        assert_eq!(s.evaluate("x * 3 + 1", &bind).unwrap(), first);
    }
    assert_eq!(s.stats().plans, plans, "no new plan");
    assert_eq!(s.stats().plans_reused, 5);
    // Another shape plans again, and is right.
    let y = Array1::linspace(0.0, 1.0, 7);
    let r = s
        .evaluate("x * 3 + 1", &[("x", ArgView::from(&y))])
        .unwrap();
    assert_eq!(r.into_f64().unwrap().len(), 7);
    assert_eq!(s.stats().plans, plans + 1);
}

#[test]
fn compile_str_takes_declared_params_in_order() {
    let s = cpu();
    let f = s
        .compile_str(
            "a - b; a * b",
            &[("b", DType::F64, &[3]), ("a", DType::F64, &[3])],
        )
        .unwrap();
    assert_eq!(
        f.params().iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    let (a, b) = (arr1(&[5.0, 6.0, 7.0]), arr1(&[1.0, 2.0, 4.0]));
    let out = f.call_many(&[(&b).into(), (&a).into()]).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].clone().into_f64().unwrap().as_slice().unwrap(),
        &[4.0, 4.0, 3.0]
    );
    assert_eq!(
        out[1].clone().into_f64().unwrap().as_slice().unwrap(),
        &[5.0, 12.0, 28.0]
    );
    let first: Array1<f64> = f.call_as(&[(&b).into(), (&a).into()]).unwrap();
    assert_eq!(first, arr1(&[4.0, 4.0, 3.0]));
    match s.compile_str("a + z", &[("a", DType::F64, &[3])]).err() {
        Some(Error::UnknownName { name, known }) => {
            assert_eq!((name, known), ("z".into(), vec!["a".to_string()]))
        }
        other => panic!("{other:?}"),
    }
}

// ---- arithmetic with every Rust scalar ----------------------------------------------------

#[test]
fn every_rust_scalar_is_weak() {
    let s = cpu();
    let xf32 = s.data(arr1(&[1.0f32, 2.0, 4.0]));
    let xi32 = s.data(arr1(&[1i32, 2, 4]));
    let n: usize = 4;
    // NEP 50: a Rust scalar takes the array's dtype.
    let cases: Vec<(Expr, DType, Vec<f64>)> = vec![
        (&xf32 * 2.0f32, DType::F32, vec![2.0, 4.0, 8.0]),
        (Expr::from(2.0f32) * &xf32, DType::F32, vec![2.0, 4.0, 8.0]),
        (2.0f64 * &xf32, DType::F32, vec![2.0, 4.0, 8.0]),
        (&xf32 / n, DType::F32, vec![0.25, 0.5, 1.0]),
        (3 * &xi32, DType::I32, vec![3.0, 6.0, 12.0]),
        (&xi32 * 3i32, DType::I32, vec![3.0, 6.0, 12.0]),
        (&xi32 + 3u32, DType::I32, vec![4.0, 5.0, 7.0]),
        (Expr::from(3u64) - &xi32, DType::I32, vec![2.0, 1.0, -1.0]),
        (Expr::from(n) * &xi32, DType::I32, vec![4.0, 8.0, 16.0]),
        (&xi32 * n, DType::I32, vec![4.0, 8.0, 16.0]),
        (&xi32 * 2i64, DType::I32, vec![2.0, 4.0, 8.0]),
        (&xi32 + 1u8, DType::I32, vec![2.0, 3.0, 5.0]),
        (&xi32 * -1isize, DType::I32, vec![-1.0, -2.0, -4.0]),
        (&xi32 - 1i16, DType::I32, vec![0.0, 1.0, 3.0]),
        // int / int is true division (float64), as NumPy.
        (&xi32 / 2usize, DType::F64, vec![0.5, 1.0, 2.0]),
        (2.5 * &xi32, DType::F64, vec![2.5, 5.0, 10.0]),
        // Every Rust number on the left too, weak as on the right.
        (2.0f32 * &xf32, DType::F32, vec![2.0, 4.0, 8.0]),
        (1.5f32 * &xi32, DType::F64, vec![1.5, 3.0, 6.0]),
        (3i32 + &xi32, DType::I32, vec![4.0, 5.0, 7.0]),
        (3i64 + &xi32, DType::I32, vec![4.0, 5.0, 7.0]),
        (3i32 * &xf32, DType::F32, vec![3.0, 6.0, 12.0]),
        (10u8 - &xi32, DType::I32, vec![9.0, 8.0, 6.0]),
        (2u16 * &xi32, DType::I32, vec![2.0, 4.0, 8.0]),
        (2u32 * &xi32, DType::I32, vec![2.0, 4.0, 8.0]),
        (2u64 * &xi32, DType::I32, vec![2.0, 4.0, 8.0]),
        (-2i8 * &xi32, DType::I32, vec![-2.0, -4.0, -8.0]),
        (-2i16 * &xi32, DType::I32, vec![-2.0, -4.0, -8.0]),
        (-2isize * &xi32, DType::I32, vec![-2.0, -4.0, -8.0]),
        (n * &xi32, DType::I32, vec![4.0, 8.0, 16.0]),
        (n / &xi32, DType::F64, vec![4.0, 2.0, 1.0]),
        (8.0f32 / xf32.clone(), DType::F32, vec![8.0, 4.0, 2.0]),
        (1 << &xi32, DType::I32, vec![2.0, 4.0, 16.0]),
    ];
    for (e, dt, want) in cases {
        assert_eq!(e.dtype().unwrap(), dt, "{e}");
        let got = s.compute(&e).unwrap();
        let oracle = reference().compute(&e).unwrap();
        assert_eq!(got, oracle, "{e}");
        let vals: Vec<f64> = (0..3)
            .map(|i| match &got {
                DynArray::F32(a) => a[[i]] as f64,
                DynArray::F64(a) => a[[i]],
                DynArray::I32(a) => a[[i]] as f64,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(vals, want, "{e}");
    }
    // `x.sum() / n` with n: usize, the mean by hand.
    let x = s.data(arr1(&[1.0, 2.0, 6.0]));
    // Literals on the left chain through operators; before a method call on the result an
    // unsuffixed literal needs its type (several Rust number types implement `f * &x`).
    assert_eq!(
        s.compute(&(0.5f64 * &x + 1).exp().sum()).unwrap().dtype(),
        DType::F64
    );
    // (The literal's type is fixed by the use: `compute(&poly)` wants an `&Expr`.)
    let poly = (5.0 * &x + 4.0) * &x + 1.0;
    assert_eq!(s.compute(&poly).unwrap().dtype(), DType::F64);
    // `true & b`, and a weak scalar beyond the array's range on the left: NumPy's OverflowError.
    let b = s.data(arr1(&[true, false]));
    assert_eq!(
        s.compute_as::<bool, Ix1>(&(true & &b)).unwrap(),
        arr1(&[true, false])
    );
    assert!(matches!(
        (u64::MAX * &xi32).dtype(),
        Err(Error::IntegerOverflow { .. })
    ));
    assert!(matches!(
        ((1usize << 40) + &xi32).dtype(),
        Err(Error::IntegerOverflow { .. })
    ));
    let mean = s
        .compute(&(x.sum() / 3usize))
        .unwrap()
        .scalar::<f64>()
        .unwrap();
    assert_eq!(mean, 3.0);
    // A u64 beyond int64 is an error, not a wrapped value.
    assert!(matches!(
        (&xi32 + u64::MAX).dtype(),
        Err(Error::IntegerOverflow { .. })
    ));
    // A weak int that does not fit the array's dtype: NumPy's OverflowError.
    assert!(matches!(
        (&xi32 + (1usize << 40)).dtype(),
        Err(Error::IntegerOverflow { .. })
    ));
}

#[test]
fn functions_have_one_flat_path() {
    let s = cpu();
    let x = s.data(arr1(&[-2.0, 0.5, f64::NAN, 3.0]));
    // The root and `functions` name the same functions.
    let a = where_(x.gt(0.0), maximum(&x, 1.0), clip(&x, -1.0, 1.0));
    let b = functions::where_(
        x.gt(0.0),
        functions::maximum(&x, 1.0),
        functions::clip(&x, -1.0, 1.0),
    );
    let (ra, rb) = (s.compute(&a).unwrap(), s.compute(&b).unwrap());
    assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
    // NumPy: clip(-2) = -1; x > 0 for 0.5 gives maximum(0.5, 1) = 1; NaN > 0 is false and
    // clip(NaN) is NaN; maximum(3, 1) = 3.
    let v = ra.into_f64().unwrap();
    assert_eq!(v[[0]], -1.0);
    assert_eq!(v[[1]], 1.0);
    assert!(v[[2]].is_nan());
    assert_eq!(v[[3]], 3.0);
    let e = fusebox::exp(&x);
    assert_eq!(e.to_string(), functions::exp(&x).to_string());
}

// ---- axis shorthands ----------------------------------------------------------------------

#[test]
fn axis_shorthands_match_reduce() {
    let s = cpu();
    let z = s.data(Array2::from_shape_fn((4, 5), |(i, j)| {
        ((i * 7 + j * 3) % 11) as f64 - 4.0
    }));
    use fusebox::{ReduceOp, Reduction};
    let pairs = [
        (
            z.max_axis(1).keepdims(),
            z.reduce(Reduction::Op(ReduceOp::Max), Some(&[1]), true),
        ),
        (
            z.sum_axis(0),
            z.reduce(Reduction::Op(ReduceOp::Sum), Some(&[0]), false),
        ),
        (
            z.mean_axis(-1),
            z.reduce(Reduction::Mean, Some(&[-1]), false),
        ),
        (
            z.std_axis(0).keepdims(),
            z.reduce(Reduction::Std { ddof: 0 }, Some(&[0]), true),
        ),
        (
            z.argmax_axis(1),
            z.reduce(Reduction::Op(ReduceOp::ArgMax), Some(&[1]), false),
        ),
    ];
    for (short, long) in pairs {
        assert_eq!(short.to_string(), long.to_string());
        assert_eq!(s.compute(&short).unwrap(), s.compute(&long).unwrap());
    }
    assert!(matches!(
        (&z + 1.0).keepdims().meta(),
        Err(Error::Argument { .. })
    ));
}

#[test]
fn softmax_and_standardize_on_rows() {
    let s = cpu();
    let data = Array2::from_shape_fn((3, 6), |(i, j)| (i as f64 - 1.0) * 0.7 + j as f64 * 0.3);
    let z = s.data(data.clone());
    let e = (&z - z.max_axis(1).keepdims()).exp();
    let softmax = &e / e.sum_axis(1).keepdims();
    let standard = (&z - z.mean_axis(0).keepdims()) / z.std_axis(0).keepdims();
    let got = s
        .compute_many(&[softmax.clone(), standard.clone()])
        .unwrap();
    let r = reference();
    assert_agree("softmax", &got[0], &r.compute(&softmax).unwrap(), 4);
    assert_agree("standardize", &got[1], &r.compute(&standard).unwrap(), 4);
    // Each row of a softmax sums to 1.
    let sm: Array2<f64> = got[0].clone().into_array().unwrap();
    for row in sm.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-12);
    }
}

// ---- plan caches -------------------------------------------------------------------------

#[test]
fn compute_with_on_a_seen_expression_reuses_its_plan() {
    let s = cpu();
    let x = s.symbol("x", DType::F64, &[1000]);
    let e = (5.0 * &x + 4.0) * &x + 1.0;
    let data = Array1::linspace(0.0, 1.0, 1000);
    let first = s.compute_with(&e, &[("x", (&data).into())]).unwrap();
    let st = s.stats();
    for _ in 0..3 {
        assert_eq!(s.compute_with(&e, &[("x", (&data).into())]).unwrap(), first);
    }
    let after = s.stats();
    assert_eq!(after.plans, st.plans);
    assert_eq!(after.plans_reused, st.plans_reused + 3);
    assert_eq!(after.compilations, st.compilations);
    // Another expression at (possibly) the same address after the first is dropped is not
    // confused with it: its result is its own.
    drop(e);
    let e2 = (&x - 1.0) * 2.0;
    let r = s.compute_with(&e2, &[("x", (&data).into())]).unwrap();
    assert_eq!(
        r,
        reference()
            .compute_with(&e2, &[("x", (&data).into())])
            .unwrap()
    );
}

#[test]
fn compiled_function_cycling_many_lengths_plans_each_once() {
    let s = cpu();
    let t = s.symbol("t", DType::F64, &[3]);
    let f = s.compile(&((&t - 1.0) * &t)).unwrap();
    let arrays: Vec<Array1<f64>> = (1..=60).map(|n| Array1::linspace(0.0, 1.0, n)).collect();
    for a in &arrays {
        f.call(&[a.into()]).unwrap();
    }
    let plans = s.stats().plans;
    for a in &arrays {
        let got = f.call(&[a.into()]).unwrap();
        let want = a.mapv(|v| (v - 1.0) * v);
        assert_eq!(
            got.into_f64()
                .unwrap()
                .into_dimensionality::<Ix1>()
                .unwrap(),
            want
        );
    }
    assert_eq!(s.stats().plans, plans, "60 lengths: each planned once");
}

#[test]
fn compile_many_gives_one_result_per_expression() {
    let s = cpu();
    let x = s.symbol("x", DType::F64, &[5]);
    let f = s
        .compile_many(&[x.min(), x.max(), (&x * &x).sum()])
        .unwrap();
    let data = arr1(&[3.0, -1.0, 2.0, 8.0, 0.5]);
    let before = s.stats().kernels_launched;
    let out = f.call_many(&[(&data).into()]).unwrap();
    assert_eq!(s.stats().kernels_launched - before, 1, "one fused pass");
    assert_eq!(out[0].scalar::<f64>().unwrap(), -1.0);
    assert_eq!(out[1].scalar::<f64>().unwrap(), 8.0);
    assert_eq!(
        out[2].scalar::<f64>().unwrap(),
        9.0 + 1.0 + 4.0 + 64.0 + 0.25
    );
    assert!(matches!(
        s.compile_many(&[]).err(),
        Some(Error::Argument { .. })
    ));
}
