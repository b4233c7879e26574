//! A compiled function called with a new length of a rank it has seen re-uses the plan's
//! skeleton (steps and compiled kernels, sizes re-derived) instead of planning again
//! (issue 18, item 5). Every result is checked against the reference evaluator
//! (`Device::Reference`) on the same arguments; `Stats` proves what was (not) planned.
mod common;

use common::{agree, assert_agree};
use fusebox::{ArgView, DType, Device, DynArray, Expr, Options, Session};
use ndarray::{Array1, Array2, ArrayD, IxDyn};

fn cpu() -> Session {
    Session::with_options(Options::default().with_device(Device::Cpu))
}

/// Deterministic values in [-2, 2) of `shape` (not symmetric, so sums do not cancel).
fn values(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n as u64)
        .map(|i| {
            let h = (i + 1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(seed.wrapping_mul(0xbf58_476d_1ce4_e5b9));
            ((h >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

/// The expressions `build` makes of float64 symbols `names` (declared with the shapes of
/// `args`), on `args`, by the reference evaluator.
fn reference(
    build: &dyn Fn(&[Expr]) -> Vec<Expr>,
    names: &[&str],
    args: &[ArgView<'_>],
) -> Vec<DynArray> {
    let r = Session::with_options(Options::default().with_device(Device::Reference));
    let symbols: Vec<Expr> = names
        .iter()
        .zip(args)
        .map(|(n, a)| r.symbol(n, DType::F64, a.shape()))
        .collect();
    let bind: Vec<(&str, ArgView<'_>)> = names
        .iter()
        .zip(args)
        .map(|(n, a)| (*n, a.reborrow()))
        .collect();
    build(&symbols)
        .iter()
        .map(|e| r.compute_with(e, &bind).unwrap())
        .collect()
}

/// The expressions `build` makes of float64 symbols `names` of `shapes`, compiled in `s`.
fn compile(
    s: &Session,
    build: &dyn Fn(&[Expr]) -> Vec<Expr>,
    names: &[&str],
    shapes: &[&[usize]],
) -> fusebox::Compiled {
    let symbols: Vec<Expr> = names
        .iter()
        .zip(shapes)
        .map(|(n, sh)| s.symbol(n, DType::F64, sh))
        .collect();
    s.compile_many(&build(&symbols)).unwrap()
}

#[test]
fn fifty_lengths_of_one_rank_plan_once() {
    let s = cpu();
    let poly = |v: &[Expr]| vec![(5.0 * &v[0] + 4.0) * &v[0] + 1.0];
    let f = compile(&s, &poly, &["t"], &[&[1000]]);
    let st = s.stats();
    assert_eq!((st.plans, st.plans_resized), (1, 0));
    let arrays: Vec<ArrayD<f64>> = (0..50).map(|i| values(&[975 + i], i as u64)).collect();
    for round in 0..2 {
        for a in &arrays {
            let args = [ArgView::from(a)];
            let got = f.call(&args).unwrap();
            let want = reference(&poly, &["t"], &args);
            assert_agree(&format!("length {}", a.len()), &got, &want[0], 0);
        }
        let st = s.stats();
        assert_eq!(st.plans, 1, "round {round}: no plan after the first length");
        // 1000 is the declared length: the compile's plan; the other 49 are re-derived once.
        assert_eq!(st.plans_resized, 49, "round {round}");
        assert_eq!(st.compilations, 1, "one kernel, compiled once");
    }
}

#[test]
fn broadcasting_and_axis_reductions_keep_their_skeleton() {
    let s = cpu();
    let exprs = |v: &[Expr]| {
        let prod = &v[0] * &v[1] + 1.0;
        vec![
            prod.sum_axis(1),
            prod.sum(),
            (&v[0] - &v[1]).max_axis(0),
            prod,
        ]
    };
    let f = compile(&s, &exprs, &["x", "y"], &[&[4, 3], &[3]]);
    let plans = s.stats().plans;
    let sizes = [(2, 5), (7, 3), (40, 9), (3, 2), (100, 17), (5, 64)];
    for (i, &(r, c)) in sizes.iter().enumerate() {
        let xa = values(&[r, c], 2 * i as u64);
        let ya = values(&[c], 2 * i as u64 + 1);
        let args = [ArgView::from(&xa), ArgView::from(&ya)];
        let got = f.call_many(&args).unwrap();
        let want = reference(&exprs, &["x", "y"], &args);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            // Sums may add in another order: a few ulps on these sizes.
            assert_agree(&format!("{r}x{c} result {k}"), g, w, 64);
        }
    }
    let st = s.stats();
    assert_eq!(
        st.plans, plans,
        "every (r, c) with r != c, both > 1: one skeleton"
    );
    assert_eq!(st.plans_resized, sizes.len() as u64);
    // A length-1 dim broadcasts: another skeleton (planned once), right too.
    for (i, r) in [6usize, 11].into_iter().enumerate() {
        let xa = values(&[r, 1], 50 + i as u64);
        let ya = values(&[5], 60 + i as u64);
        let args = [ArgView::from(&xa), ArgView::from(&ya)];
        let got = f.call_many(&args).unwrap();
        let want = reference(&exprs, &["x", "y"], &args);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_agree(&format!("{r}x1 result {k}"), g, w, 64);
        }
    }
    let st = s.stats();
    assert_eq!(st.plans, plans + 1);
    assert_eq!(st.plans_resized, sizes.len() as u64 + 1);
}

#[test]
fn another_rank_or_pattern_of_equal_lengths_plans_anew() {
    let s = cpu();
    // x and y are independent: with equal lengths their sums share one pass.
    let e = |v: &[Expr]| vec![v[0].sum() * 2.0 + v[1].sum()];
    let f = compile(&s, &e, &["x", "y"], &[&[10], &[10]]);
    let plans = s.stats().plans;
    let cases: [(&[usize], &[usize]); 5] = [
        (&[10], &[20]),
        (&[33], &[7]),
        (&[8], &[8]),
        (&[4, 5], &[9]),
        (&[6, 2], &[3]),
    ];
    for (i, (xs, ys)) in cases.iter().enumerate() {
        let xa = values(xs, i as u64);
        let ya = values(ys, 100 + i as u64);
        let args = [ArgView::from(&xa), ArgView::from(&ya)];
        let got = f.call(&args).unwrap();
        let want = reference(&e, &["x", "y"], &args);
        agree(&got, &want[0], 16).unwrap_or_else(|m| panic!("{xs:?} {ys:?}: {m}"));
    }
    let st = s.stats();
    // [10],[20]: new pattern (plan); [33],[7]: resized; [8],[8]: the compile's skeleton;
    // [4,5],[9]: new ranks (plan); [6,2],[3]: resized.
    assert_eq!(st.plans, plans + 2);
    assert_eq!(st.plans_resized, 3);
}

#[test]
fn shapes_that_do_not_broadcast_are_errors_after_a_skeleton() {
    let s = cpu();
    let x = s.symbol("x", DType::F64, &[4]);
    let y = s.symbol("y", DType::F64, &[4]);
    let f = s.compile(&(&x + &y)).unwrap();
    let a = Array1::linspace(0.0, 1.0, 5);
    let b = Array1::linspace(0.0, 1.0, 7);
    assert!(f.call(&[(&a).into(), (&b).into()]).is_err());
    let c = Array1::linspace(0.0, 1.0, 9);
    let d = Array1::linspace(2.0, 3.0, 9);
    let got = f.call(&[(&c).into(), (&d).into()]).unwrap();
    assert_eq!(got, DynArray::from(&c + &d));
    assert_eq!(s.stats().plans_resized, 1);
    assert!(f.call(&[(&c).into(), (&b).into()]).is_err());
}

#[test]
fn data_bound_in_the_expression_pins_its_lengths() {
    let s = cpu();
    let w = Array1::from_vec(vec![1.0, -2.0, 0.5, 4.0]);
    let d = s.data(w.clone());
    let x = s.symbol("x", DType::F64, &[3, 4]);
    let e = (&x * &d).sum_axis(1);
    let f = s.compile(&e).unwrap();
    for rows in [3usize, 5, 9, 1, 2] {
        let xa = Array2::from_shape_fn((rows, 4), |(i, j)| (i * 4 + j) as f64 - 3.5);
        let got = f.call(&[(&xa).into()]).unwrap();
        let want = DynArray::from((&xa * &w).sum_axis(ndarray::Axis(1)));
        assert_agree(&format!("{rows} rows"), &got, &want, 4);
    }
    // 5, 9, 2 rows: resized; 1 row: its own skeleton.
    assert_eq!(s.stats().plans_resized, 3);
    // A length other than the data's 4 does not broadcast against it, skeleton or not.
    let bad = Array2::<f64>::zeros((3, 5));
    assert!(f.call(&[(&bad).into()]).is_err());
    let bad = Array2::<f64>::zeros((4, 8));
    assert!(f.call(&[(&bad).into()]).is_err());
}

#[test]
fn plans_that_embed_a_length_plan_per_shape() {
    let s = cpu();
    // A mean's count is a constant of its kernel; a view's strides are resolved per shape.
    type Build = fn(&[Expr]) -> Vec<Expr>;
    let exprs: [Build; 4] = [
        |v| vec![v[0].mean()],
        |v| vec![v[0].var()],
        |v| vec![(&v[0].t() * 2.0).sum_axis(0)],
        |v| vec![&v[0].t() + 1.0],
    ];
    for (k, e) in exprs.iter().enumerate() {
        let name = if k < 2 { "t" } else { "x" };
        let first: &[usize] = if k < 2 { &[4] } else { &[2, 3] };
        let f = compile(&s, e, &[name], &[first]);
        let plans = s.stats().plans;
        let resized = s.stats().plans_resized;
        let shapes: Vec<Vec<usize>> = if k < 2 {
            (5..11).map(|n| vec![n]).collect()
        } else {
            (2..8).map(|n| vec![n, n + 3]).collect()
        };
        for (i, shape) in shapes.iter().enumerate() {
            let a = values(shape, i as u64);
            let args = [ArgView::from(&a)];
            let got = f.call(&args).unwrap();
            let want = reference(e, &[name], &args);
            assert_agree(&format!("expr {k} {shape:?}"), &got, &want[0], 16);
        }
        let st = s.stats();
        assert_eq!(st.plans_resized, resized, "expr {k}: never resized");
        assert_eq!(
            st.plans,
            plans + shapes.len() as u64,
            "expr {k}: one plan per shape"
        );
    }
}

#[test]
fn call_into_takes_resized_plans() {
    let s = cpu();
    let t = s.symbol("t", DType::F64, &[8]);
    let f = s.compile(&(&t * &t - 1.0)).unwrap();
    for n in [3usize, 17, 100] {
        let a = values(&[n], n as u64);
        let mut out = ArrayD::<f64>::zeros(IxDyn(&[n]));
        f.call_into(&[(&a).into()], &mut out).unwrap();
        assert_eq!(out, a.mapv(|v| v * v - 1.0));
    }
    assert_eq!(s.stats().plans, 1);
    assert_eq!(s.stats().plans_resized, 3);
}
