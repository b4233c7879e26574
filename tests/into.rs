//! Caller-owned outputs: `Compiled::call_into` and `Session::compute_into` against the
//! reference evaluator, for contiguous, strided, transposed, reversed and gapped outputs,
//! in-place updates and other overlaps, and wrong shapes and dtypes.
use fusebox::unstable::reference;
use fusebox::{DType, Device, DynArray, Error, Expr, Options, ReduceOp, Reduction, Session};
use ndarray::{s, Array1, Array2, ArrayD, IxDyn};
use std::collections::HashMap;

fn cpu() -> Session {
    Session::with_options(Options::default().with_device(Device::Cpu))
}

/// Values that exercise rounding (not small integers).
fn values(shape: &[usize], seed: f64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as f64 + seed) * 0.7310585).sin() * 3.0 + 0.25)
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

/// The reference evaluator's result of `e` with `x` (and `y`) bound.
fn oracle(e: &Expr, binds: &[(&str, &ArrayD<f64>)]) -> ArrayD<f64> {
    let map: HashMap<String, DynArray> = binds
        .iter()
        .map(|(n, a)| (n.to_string(), DynArray::from((*a).clone())))
        .collect();
    reference::evaluate(e, &map).unwrap().into_f64().unwrap()
}

fn assert_bits(got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(want.iter()) {
        assert!(g.to_bits() == w.to_bits(), "got {g}, want {w}");
    }
}

/// `(5x + 4)x + 1 - y` over `shape`, compiled.
fn poly(s: &Session, shape: &[usize]) -> (Expr, fusebox::Compiled) {
    let x = s.symbol("x", DType::F64, shape);
    let y = s.symbol("y", DType::F64, shape);
    let e = (5.0 * &x + 4.0) * &x + 1.0 - &y;
    let f = s.compile(&e).unwrap();
    (e, f)
}

#[test]
fn call_into_contiguous_matches_the_oracle() {
    let s = cpu();
    for n in [0usize, 1, 3, 1000, 70_001] {
        let (e, f) = poly(&s, &[n]);
        let (x, y) = (values(&[n], 1.0), values(&[n], 2.0));
        let mut out = ArrayD::<f64>::from_elem(IxDyn(&[n]), f64::NAN);
        f.call_into(&[x.view().into(), y.view().into()], &mut out)
            .unwrap();
        assert_bits(&out, &oracle(&e, &[("x", &x), ("y", &y)]));
    }
}

#[test]
fn call_into_strided_transposed_reversed_and_gapped_outputs() {
    let s = cpu();
    for (r, c) in [(7usize, 5usize), (300, 333), (1, 9), (9, 1)] {
        let (e, f) = poly(&s, &[r, c]);
        let (x, y) = (values(&[r, c], 0.5), values(&[r, c], 9.0));
        let want = oracle(&e, &[("x", &x), ("y", &y)]);
        let args = [x.view().into(), y.view().into()];
        // Transposed (Fortran order): the inner run goes down the columns.
        let mut t = Array2::<f64>::from_elem((c, r), f64::NAN);
        f.call_into(&args, t.view_mut().reversed_axes()).unwrap();
        assert_bits(&t.t().to_owned().into_dyn(), &want);
        // Every other element of a wider buffer (no unit-stride axis).
        let mut wide = Array2::<f64>::from_elem((r, 2 * c), f64::NAN);
        f.call_into(&args, wide.slice_mut(s![.., ..;2])).unwrap();
        assert_bits(&wide.slice(s![.., ..;2]).to_owned().into_dyn(), &want);
        assert!(wide.slice(s![.., 1..;2]).iter().all(|v| v.is_nan()));
        // Reversed along both axes.
        let mut rev = Array2::<f64>::from_elem((r, c), f64::NAN);
        f.call_into(&args, rev.slice_mut(s![..;-1, ..;-1])).unwrap();
        assert_bits(&rev.slice(s![..;-1, ..;-1]).to_owned().into_dyn(), &want);
        // Rows of a bigger matrix (padded rows).
        let mut pad = Array2::<f64>::from_elem((r, c + 3), f64::NAN);
        f.call_into(&args, pad.slice_mut(s![.., 1..c + 1])).unwrap();
        assert_bits(&pad.slice(s![.., 1..c + 1]).to_owned().into_dyn(), &want);
    }
}

#[test]
fn call_into_on_the_pool_with_strided_inputs() {
    // Large enough for the thread pool; inputs transposed, output transposed too.
    let s = cpu();
    let (r, c) = (700usize, 600usize);
    let (e, f) = poly(&s, &[r, c]);
    let xt = values(&[c, r], 3.0);
    let x = xt.t().to_owned();
    let y = values(&[r, c], 4.0);
    let want = oracle(&e, &[("x", &x), ("y", &y)]);
    for _ in 0..3 {
        let mut out = Array2::<f64>::from_elem((c, r), f64::NAN);
        f.call_into(
            &[xt.t().into(), y.view().into()],
            out.view_mut().reversed_axes(),
        )
        .unwrap();
        assert_bits(&out.t().to_owned().into_dyn(), &want);
    }
}

#[test]
fn call_into_broadcast_inputs() {
    let s = cpu();
    let x = s.symbol("x", DType::F64, &[40, 30]);
    let v = s.symbol("v", DType::F64, &[30]);
    let c = s.symbol("c", DType::F64, &[40, 1]);
    let e = (&x + &v) * &c;
    let f = s.compile(&e).unwrap();
    let (xa, va, ca) = (
        values(&[40, 30], 1.0),
        values(&[30], 2.0),
        values(&[40, 1], 3.0),
    );
    let want = oracle(&e, &[("x", &xa), ("v", &va), ("c", &ca)]);
    let mut out = Array2::<f64>::zeros((30, 40));
    f.call_into(
        &[xa.view().into(), va.view().into(), ca.view().into()],
        out.view_mut().reversed_axes(),
    )
    .unwrap();
    assert_bits(&out.t().to_owned().into_dyn(), &want);
}

#[test]
fn call_into_other_dtypes() {
    let s = cpu();
    let a = s.symbol("a", DType::F32, &[50]);
    let b = s.symbol("b", DType::F64, &[50]);
    let mixed = fusebox::where_(a.gt(0.0), &a, 0.01 * &a) + &b;
    let f = s.compile(&mixed).unwrap();
    let av: Array1<f32> = (0..50).map(|i| (i as f32 - 25.0) * 0.37).collect();
    let bv: Array1<f64> = (0..50).map(|i| i as f64 * 0.11).collect();
    let map: HashMap<String, DynArray> = [
        ("a".to_string(), DynArray::from(av.clone())),
        ("b".to_string(), DynArray::from(bv.clone())),
    ]
    .into();
    let want = reference::evaluate(&mixed, &map)
        .unwrap()
        .into_f64()
        .unwrap();
    let mut out = Array1::<f64>::zeros(100);
    f.call_into(
        &[av.view().into(), bv.view().into()],
        out.slice_mut(s![..;2]),
    )
    .unwrap();
    assert_bits(&out.slice(s![..;2]).to_owned().into_dyn(), &want);

    // A bool result, written with a gap.
    let cmp = a.gt(0.5);
    let g = s.compile(&cmp).unwrap();
    let mut mask = ndarray::Array1::<bool>::from_elem(150, true);
    g.call_into(&[av.view().into()], mask.slice_mut(s![..;3]))
        .unwrap();
    for (i, m) in mask.iter().enumerate() {
        let want = i % 3 != 0 || av[i / 3] > 0.5;
        assert_eq!(*m, want, "element {i}");
    }
}

#[test]
fn in_place_update_is_handled() {
    // `out` is the argument `x` itself: every element is read before it is written.
    let s = cpu();
    for n in [5usize, 100_000] {
        let x = s.symbol("x", DType::F64, &[n]);
        let e = 2.0 * &x + 1.0;
        let f = s.compile(&e).unwrap();
        let mut a = values(&[n], 1.0);
        let want = oracle(&e, &[("x", &a)]);
        // The in-place call NumPy users make (`out=x`): both views from one raw pointer.
        let ptr = a.as_mut_ptr();
        // SAFETY: both views cover `a`'s `n` elements, and `a` outlives the call.
        let (view, out) = unsafe {
            (
                ndarray::ArrayView1::from_shape_ptr(n, ptr as *const f64),
                ndarray::ArrayViewMut1::from_shape_ptr(n, ptr),
            )
        };
        f.call_into(&[view.into()], out).unwrap();
        assert_bits(&a, &want);
    }
}

#[test]
fn partial_overlap_is_handled_by_a_copy() {
    // `out` is `x` shifted by one element: running in place would read written values.
    let s = cpu();
    let n = 1000usize;
    let x = s.symbol("x", DType::F64, &[n]);
    let e = &x * 3.0 - 1.0;
    let f = s.compile(&e).unwrap();
    let mut buf = values(&[n + 1], 5.0)
        .into_dimensionality::<ndarray::Ix1>()
        .unwrap();
    let xs = buf.slice(s![..n]).to_owned().into_dyn();
    let want = oracle(&e, &[("x", &xs)]);
    let base = buf.as_mut_ptr();
    // SAFETY: both views lie inside `buf`, which outlives the call.
    let (xin, out) = unsafe {
        (
            ndarray::ArrayView1::from_shape_ptr(n, base as *const f64),
            ndarray::ArrayViewMut1::from_shape_ptr(n, base.add(1)),
        )
    };
    f.call_into(&[xin.into()], out).unwrap();
    assert_bits(&buf.slice(s![1..]).to_owned().into_dyn(), &want);

    // The reversed input as output: handled the same way.
    let mut a = values(&[n], 6.0)
        .into_dimensionality::<ndarray::Ix1>()
        .unwrap();
    let want = oracle(&e, &[("x", &a.slice(s![..;-1]).to_owned().into_dyn())]);
    let p = a.as_mut_ptr();
    // SAFETY: as above.
    let (xin, out) = unsafe {
        (
            ndarray::ArrayView1::from_shape_ptr(n, p as *const f64),
            ndarray::ArrayViewMut1::from_shape_ptr(n, p),
        )
    };
    f.call_into(&[xin.slice_move(s![..;-1]).into()], out)
        .unwrap();
    assert_bits(&a.into_dyn(), &want);
}

#[test]
fn wrong_shape_and_dtype_are_typed_errors() {
    let s = cpu();
    let (_, f) = poly(&s, &[10]);
    let (x, y) = (values(&[10], 1.0), values(&[10], 2.0));
    let args = [x.view().into(), y.view().into()];
    let mut short = Array1::<f64>::zeros(9);
    match f.call_into(&args, &mut short) {
        Err(Error::ShapeMismatch { lhs, rhs }) => assert_eq!((lhs, rhs), (vec![9], vec![10])),
        r => panic!("expected ShapeMismatch, got {r:?}"),
    }
    let mut f32s = Array1::<f32>::zeros(10);
    match f.call_into(&args, &mut f32s) {
        Err(Error::DtypeMismatch {
            expected, found, ..
        }) => assert_eq!((expected, found), (DType::F64, DType::F32)),
        r => panic!("expected DtypeMismatch, got {r:?}"),
    }
    let mut two_d = Array2::<f64>::zeros((10, 1));
    assert!(matches!(
        f.call_into(&args, &mut two_d),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn compute_into_reductions_and_multi_step_plans() {
    let s = cpu();
    let xa = values(&[60, 50], 2.0);
    let x = s.named_data("x", xa.clone());
    // A reduction's result goes through a copy; a softmax-like plan has several steps.
    let sums = x.reduce(Reduction::Op(ReduceOp::Sum), Some(&[0][..]), false);
    let mut out = Array1::<f64>::zeros(50);
    s.compute_into(&sums, &mut out).unwrap();
    assert_bits(&out.into_dyn(), &oracle(&sums, &[]));
    let m = x.reduce(Reduction::Op(ReduceOp::Max), Some(&[1][..]), true);
    let ex = (&x - &m).exp();
    let soft = &ex / ex.reduce(Reduction::Op(ReduceOp::Sum), Some(&[1][..]), true);
    let want = oracle(&soft, &[]);
    let mut out = Array2::<f64>::zeros((50, 60));
    s.compute_into(&soft, out.view_mut().reversed_axes())
        .unwrap();
    let got = out.t().to_owned().into_dyn();
    for (g, w) in got.iter().zip(want.iter()) {
        assert!((g - w).abs() <= 4.0 * f64::EPSILON * w.abs(), "{g} vs {w}");
    }
    // The reference device writes into `out` too.
    let r = Session::with_options(Options::default().with_device(Device::Reference));
    let mut out = ArrayD::<f64>::zeros(IxDyn(&[60, 50]));
    let e = r.named_data("x", xa.clone()) * 2.0;
    r.compute_into(&e, &mut out).unwrap();
    assert_bits(&out, &(&xa * 2.0));
}
