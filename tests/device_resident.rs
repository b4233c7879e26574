//! Device-resident arrays through the session: data uploaded once stays on the GPU, results
//! feed the next expression, and nothing is uploaded again (the session's counters show it).
//! Skips without an adapter, fails instead under `FUSEBOX_REQUIRE_GPU=1`.
mod common;

use fusebox::{DType, Error, Expr, Session};
use ndarray::Array1;

use common::gpu_session;

#[test]
fn results_stay_on_the_device_and_feed_the_next_expression() {
    let Some(s) = gpu_session() else { return };
    let n = 100_003;
    let x = Array1::from_iter((0..n).map(|i| i as f64 * 0.25 - 1000.0));
    let xd = s.to_device(&x.view().into()).unwrap();
    let uploaded = s.stats().bytes_uploaded;
    assert_eq!(uploaded, 8 * n as u64, "the upload itself");

    let xs = Expr::symbol("x", DType::F64, &[n]);
    let y = s
        .compute_on_device(&((5.0 * &xs + 4.0) * &xs + 1.0), &[("x", &xd)])
        .unwrap();
    let ys = Expr::symbol("y", DType::F64, &[n]);
    // A two-kernel plan (a sum feeding an element-wise map) runs on the device as well.
    let z = s
        .compute_on_device(
            &(&ys * 2.0 + &xs - ys.sum() * 0.0),
            &[("y", &y), ("x", &xd)],
        )
        .unwrap();
    let st = s.stats();
    assert_eq!(st.bytes_uploaded, uploaded, "nothing re-uploaded");
    assert_eq!(st.bytes_downloaded, 0, "nothing brought back yet");
    assert_eq!(st.kernels_launched, 3);

    let host = s.to_host(&z).unwrap().into_f64().unwrap();
    assert_eq!(s.stats().bytes_downloaded, 8 * n as u64);
    let want: Vec<f64> = x
        .iter()
        .map(|t| ((5.0 * t + 4.0) * t + 1.0) * 2.0 + t)
        .collect();
    assert_eq!(host.iter().copied().collect::<Vec<_>>(), want);
}

#[test]
fn device_api_errors_are_typed() {
    let cpu = Session::new();
    let a = Array1::<f64>::zeros(3);
    assert!(matches!(
        cpu.to_device(&a.view().into()),
        Err(Error::Device { .. })
    ));
    let Some(s) = gpu_session() else { return };
    let d = s.to_device(&a.view().into()).unwrap();
    let i = Expr::symbol("i", DType::I32, &[3]);
    assert!(matches!(
        s.compute_on_device(&(&i + 1), &[("i", &d)]),
        Err(Error::DtypeMismatch { name, expected: DType::I32, found: DType::F64 }) if name == "i"
    ));
    assert!(matches!(
        s.compute_on_device(&(&i + 1), &[("j", &d)]),
        Err(Error::UnknownName { name, known }) if name == "i" && known == ["j"]
    ));
}

/// Reductions through the session on the GPU, against ndarray: along axes, fused with
/// producers, in multi-kernel plans (standardization, softmax) and in one multi-output pass
/// (`compute_many`), on host data and on device-resident data.
#[test]
fn reductions_through_the_session_match_ndarray() {
    use fusebox::DynArray;
    use fusebox::{ReduceOp, Reduction};
    use ndarray::{Array2, Axis};
    let Some(s) = gpu_session() else { return };
    let (m, n) = (300usize, 257usize);
    let a = Array2::from_shape_fn((m, n), |(i, j)| {
        ((i * 31 + j * 17) % 101) as f64 * 0.1 - 5.0
    });
    let b = Array2::from_shape_fn((m, n), |(i, j)| ((i * 7 + j * 3) % 13) as f64 - 6.0);
    let ae = Expr::symbol("a", DType::F64, &[m, n]);
    let be = Expr::symbol("b", DType::F64, &[m, n]);
    let binds = [
        ("a", a.view().into_dyn().into()),
        ("b", b.view().into_dyn().into()),
    ];
    let op = Reduction::Op;
    let f = |x: ndarray::ArrayD<f64>| DynArray::from(x);
    let total = |x: f64| f(ndarray::arr0(x).into_dyn());
    let mean = a.mean().unwrap();
    let std = a.mapv(|x| (x - mean) * (x - mean)).mean().unwrap().sqrt();
    let mx = a.fold(f64::MIN, |m, &x| m.max(x));
    let ex = a.mapv(|x| (x - mx).exp());
    let argmax: Vec<i64> = a
        .rows()
        .into_iter()
        .map(|r| {
            let best = r.fold(f64::MIN, |m, &x| m.max(x));
            r.iter().position(|&x| x == best).unwrap() as i64
        })
        .collect();
    let row_var = a.var_axis(Axis(1), 1.0);
    let cases: Vec<(Expr, DynArray, &str)> = vec![
        (
            (&ae * &ae).sum(),
            total(a.mapv(|x| x * x).sum()),
            "sum(a*a)",
        ),
        (
            ae.reduce(Reduction::Mean, Some(&[0]), false),
            f(a.mean_axis(Axis(0)).unwrap().into_dyn()),
            "mean(a, axis=0)",
        ),
        (
            (&ae - &be)
                .abs()
                .reduce(op(ReduceOp::Max), Some(&[1]), false),
            f((&a - &b)
                .mapv(f64::abs)
                .fold_axis(Axis(1), f64::MIN, |m, &x| m.max(x))
                .into_dyn()),
            "max(|a-b|, axis=1)",
        ),
        (
            ae.reduce(op(ReduceOp::ArgMax), Some(&[1]), false),
            DynArray::from(ndarray::Array1::from(argmax).into_dyn()),
            "argmax(a, axis=1)",
        ),
        (
            ae.reduce(op(ReduceOp::Min), Some(&[0]), true),
            f(a.fold_axis(Axis(0), f64::MAX, |m, &x| m.min(x))
                .insert_axis(Axis(0))
                .into_dyn()),
            "min(a, axis=0, keepdims)",
        ),
        (
            (&ae - ae.mean()) / ae.std(),
            f(a.mapv(|x| (x - mean) / std).into_dyn()),
            "(a - mean(a)) / std(a)",
        ),
        (
            (&ae - ae.max()).exp() / (&ae - ae.max()).exp().sum(),
            f((&ex / ex.sum()).into_dyn()),
            "softmax",
        ),
        (
            ae.reduce(Reduction::Var { ddof: 1 }, Some(&[1]), false),
            f(row_var.into_dyn()),
            "var(a, axis=1, ddof=1)",
        ),
    ];
    for (e, want, what) in &cases {
        let got = s
            .compute_with(e, &binds)
            .unwrap_or_else(|err| panic!("{what}: {err}"));
        close(&got, want, what);
    }
    // min, max and sum of a in one pass.
    let many = [ae.min(), ae.max(), ae.sum()];
    let got = s.compute_many_with(&many, &binds).unwrap();
    let amin = a.fold(f64::MAX, |m, &x| m.min(x));
    for (g, w) in got.iter().zip([amin, mx, a.sum()]) {
        close(g, &total(w), "compute_many(min, max, sum)");
    }
    // On device-resident data: the results stay on the device.
    let ad = s.to_device(&a.view().into_dyn().into()).unwrap();
    let bd = s.to_device(&b.view().into_dyn().into()).unwrap();
    for (e, want, what) in &cases {
        let d = s
            .compute_on_device(e, &[("a", &ad), ("b", &bd)])
            .unwrap_or_else(|err| panic!("{what} on device: {err}"));
        close(&s.to_host(&d).unwrap(), want, what);
    }
}

fn close(got: &fusebox::DynArray, want: &fusebox::DynArray, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}");
    assert_eq!(got.shape(), want.shape(), "{what}");
    match (got, want) {
        (fusebox::DynArray::F64(g), fusebox::DynArray::F64(w)) => {
            for (x, y) in g.iter().zip(w.iter()) {
                assert!(
                    (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                    "{what}: {x} vs {y}"
                );
            }
        }
        _ => assert!(got == want, "{what}"),
    }
}
