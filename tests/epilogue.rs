//! Reduction-epilogue fusion (`src/opt/epilogue.rs`): a reduction along axis 1 and the
//! element-wise work that broadcasts it back run on the CPU as passes over blocks of rows.
//! Golden plans for each rule's case (the printed row form: `exp` once per element, `x` read
//! from memory once), results against the reference evaluator, the same bits for any thread
//! count, caller-owned outputs, and the plans that keep their kernels.
mod common;

use common::agree;
use expect_test::{expect, Expect};
use fusebox::unstable::{interp, opt};
use fusebox::{ArgView, DType, Device, DynArray, Expr, Options, Session, SliceSpec};
use ndarray::{Array2, ShapeBuilder};

fn cpu(threads: usize) -> Session {
    Session::with_options(
        Options::default()
            .with_device(Device::Cpu)
            .with_threads(threads),
    )
}

fn reference() -> Session {
    Session::with_options(Options::default().with_device(Device::Reference))
}

fn x(rows: usize, cols: usize) -> Expr {
    Expr::symbol("x", DType::F64, &[rows, cols])
}

fn softmax(x: &Expr) -> Expr {
    let e = (x - x.max_axis(1).keepdims()).exp();
    &e / e.sum_axis(1).keepdims()
}

fn minus_max(x: &Expr) -> Expr {
    x - x.max_axis(1).keepdims()
}

fn standardize(x: &Expr) -> Expr {
    (x - x.mean_axis(1).keepdims()) / x.std_axis(1).keepdims()
}

fn logsumexp(x: &Expr) -> Expr {
    let m = x.max_axis(1).keepdims();
    &m + (x - &m).exp().sum_axis(1).keepdims().log()
}

/// Rows of distinct values, each row shifted differently.
fn data(rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 31 + j * 17) % 101) as f64 * 0.37 - 12.0 + (i % 5) as f64 * 2.5
    })
}

/// The bits of a float array's elements, in order.
fn bits(a: &DynArray) -> Vec<u64> {
    match a {
        DynArray::F64(a) => a.iter().map(|v| v.to_bits()).collect(),
        DynArray::F32(a) => a.iter().map(|v| v.to_bits() as u64).collect(),
        _ => panic!("a float array"),
    }
}

/// Within 8 ulp of the oracle, or (where a standardization's `x - mean` cancels: the result's
/// absolute error is the mean's rounding) within `1e-12` (float64) or `1e-5` (float32) of it
/// relative to `1 + |oracle|`.
fn assert_agree(what: &str, ours: &DynArray, oracle: &DynArray, max_ulp: u64) {
    if agree(ours, oracle, max_ulp).is_ok() {
        return;
    }
    assert_eq!(ours.shape(), oracle.shape(), "{what}");
    let (a, b, tol): (Vec<f64>, Vec<f64>, f64) = match (ours, oracle) {
        (DynArray::F64(a), DynArray::F64(b)) => (
            a.iter().copied().collect(),
            b.iter().copied().collect(),
            1e-12,
        ),
        (DynArray::F32(a), DynArray::F32(b)) => (
            a.iter().map(|&v| v as f64).collect(),
            b.iter().map(|&v| v as f64).collect(),
            1e-5,
        ),
        _ => panic!("{what}: {}", agree(ours, oracle, max_ulp).unwrap_err()),
    };
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol * (1.0 + y.abs());
        assert!(ok, "{what}: [{i}] ours {x:e} oracle {y:e}");
    }
}

/// The explained row form of `e` over `x` of `[rows, cols]` (the text from `row form` on).
fn row_form_text(e: &Expr, rows: usize, cols: usize) -> String {
    let a = data(rows, cols);
    let ex = cpu(2).explain_with(e, &[("x", ArgView::from(&a))]).unwrap();
    let text = ex.to_string();
    let start = text.find("row form").expect("a row form");
    let end = text.rfind("bytes moved").unwrap();
    text[start..end].to_string()
}

fn check_row_form(e: &Expr, expected: Expect) {
    expected.assert_eq(&row_form_text(e, 100, 1000));
}

/// Every transcendental of the row form appears once, and memory sees `x` once.
fn row_form_counts(e: &Expr, op: &str) -> (usize, u64, u64) {
    let a = data(100, 1000);
    let ex = cpu(2).explain_with(e, &[("x", ArgView::from(&a))]).unwrap();
    let r = ex.row_form.as_ref().expect("a row form");
    let ops = r
        .passes
        .iter()
        .map(|p| p.ir.matches(&format!("= {op}.")).count())
        .sum();
    (ops, r.memory_read, r.memory_written)
}

#[test]
fn softmax_row_form_computes_exp_once_and_reads_x_once() {
    let e = softmax(&x(100, 1000));
    check_row_form(
        &e,
        expect![[r#"
            row form (cpu): 4 passes per block of 32 of 100 rows, moves 800.0 kB read + 800.0 kB written from memory (1600000 B; the kernels above: 3204000 B)
            pass 0 over [100, 1000] reducing axes [1], reads [x], writes [t0 (block, in cache)]
              kernel(in0: f64) -> reduce.max f64 {
                v0 = load.f64 in0
                reduce.max v0
              }
            pass 1 over [100, 1000], reads [x, t0], writes [t1 (block, in cache)]
              kernel(in0: f64, in1: f64) -> store f64 {
                v0 = load.f64 in0
                v1 = load.f64 in1
                v2 = sub.f64 v0, v1
                v3 = exp.f64 v2
                store v3
              }
            pass 2 over [100, 1000] reducing axes [1], reads [t1], writes [t2 (block, in cache)]
              kernel(in0: f64) -> reduce.sum f64 {
                v0 = load.f64 in0
                reduce.sum v0
              }
            pass 3 over [100, 1000], reads [t1, t2], writes [t3]
              kernel(in0: f64, in1: f64) -> store f64 {
                v0 = load.f64 in0
                v1 = load.f64 in1
                v2 = div.f64 v0, v1
                store v2
              }
        "#]],
    );
    let (exps, read, written) = row_form_counts(&e, "exp");
    assert_eq!(exps, 1, "exp once per element");
    assert_eq!(read, 8 * 100 * 1000, "x read from memory once");
    assert_eq!(written, 8 * 100 * 1000, "the result written once");
    // The multi-kernel plan (what the GPU runs) reads x three times and computes exp twice.
    let a = data(100, 1000);
    let ex = cpu(2)
        .explain_with(&e, &[("x", ArgView::from(&a))])
        .unwrap();
    let kernel_exps: usize = ex
        .kernels
        .iter()
        .map(|k| k.ir.matches("= exp.").count())
        .sum();
    assert_eq!(kernel_exps, 2);
    let kernel_bytes: u64 = ex
        .kernels
        .iter()
        .map(|k| k.bytes_read + k.bytes_written)
        .sum();
    assert!(kernel_bytes >= 4 * 8 * 100 * 1000, "{kernel_bytes}");
}

#[test]
fn minus_max_row_form() {
    let e = minus_max(&x(100, 1000));
    check_row_form(
        &e,
        expect![[r#"
            row form (cpu): 2 passes per block of 32 of 100 rows, moves 800.0 kB read + 800.0 kB written from memory (1600000 B; the kernels above: 2401600 B)
            pass 0 over [100, 1000] reducing axes [1], reads [x], writes [t0 (block, in cache)]
              kernel(in0: f64) -> reduce.max f64 {
                v0 = load.f64 in0
                reduce.max v0
              }
            pass 1 over [100, 1000], reads [x, t0], writes [t1]
              kernel(in0: f64, in1: f64) -> store f64 {
                v0 = load.f64 in0
                v1 = load.f64 in1
                v2 = sub.f64 v0, v1
                store v2
              }
        "#]],
    );
    let (_, read, written) = row_form_counts(&e, "exp");
    assert_eq!((read, written), (800_000, 800_000));
}

#[test]
fn standardize_axis1_row_form_reads_x_once() {
    let e = standardize(&x(100, 1000));
    check_row_form(
        &e,
        expect![[r#"
            row form (cpu): 3 passes per block of 32 of 100 rows, moves 800.0 kB read + 800.0 kB written from memory (1600000 B; the kernels above: 3204000 B)
            pass 0 over [100, 1000] reducing axes [1], reads [x], writes [t0 (block, in cache)]
              kernel(in0: f64) -> reduce.sum f64 {
                v0 = load.f64 in0
                reduce.sum v0
              }
            pass 1 over [100, 1000] reducing axes [1], reads [x, t0], writes [t1 (block, in cache)]
              kernel(in0: f64, in1: f64) -> reduce.sum f64 {
                v0 = load.f64 in0
                v1 = load.f64 in1
                v2 = const.f64 1000.0
                v3 = div.f64 v1, v2
                v4 = sub.f64 v0, v3
                v5 = mul.f64 v4, v4
                reduce.sum v5
              }
            pass 2 over [100, 1000], reads [x, t0, t1], writes [t2]
              kernel(in0: f64, in1: f64, in2: f64) -> store f64 {
                v0 = load.f64 in0
                v1 = load.f64 in1
                v2 = const.f64 1000.0
                v3 = div.f64 v1, v2
                v4 = sub.f64 v0, v3
                v5 = load.f64 in2
                v6 = div.f64 v5, v2
                v7 = sqrt.f64 v6
                v8 = div.f64 v4, v7
                store v8
              }
        "#]],
    );
    let (sqrts, read, written) = row_form_counts(&e, "sqrt");
    assert_eq!(sqrts, 1);
    assert_eq!((read, written), (800_000, 800_000));
}

#[test]
fn logsumexp_row_form_computes_exp_and_log_once() {
    let e = logsumexp(&x(100, 1000));
    check_row_form(
        &e,
        expect![[r#"
            row form (cpu): 3 passes per block of 32 of 100 rows, moves 800.0 kB read + 800 B written from memory (800800 B; the kernels above: 1604800 B)
            pass 0 over [100, 1000] reducing axes [1], reads [x], writes [t0 (block, in cache)]
              kernel(in0: f64) -> reduce.max f64 {
                v0 = load.f64 in0
                reduce.max v0
              }
            pass 1 over [100, 1000] reducing axes [1], reads [x, t0], writes [t1 (block, in cache)]
              kernel(in0: f64, in1: f64) -> reduce.sum f64 {
                v0 = load.f64 in0
                v1 = load.f64 in1
                v2 = sub.f64 v0, v1
                v3 = exp.f64 v2
                reduce.sum v3
              }
            pass 2 over [100, 1], reads [t0, t1], writes [t2]
              kernel(in0: f64, in1: f64) -> store f64 {
                v0 = load.f64 in0
                v1 = load.f64 in1
                v2 = log.f64 v1
                v3 = add.f64 v0, v2
                store v3
              }
        "#]],
    );
    let (exps, read, written) = row_form_counts(&e, "exp");
    assert_eq!(exps, 1);
    assert_eq!((read, written), (800_000, 800));
}

/// The cases at shapes with a short last block (70 rows of 1000: blocks of 32), one row, a
/// single column, and rows narrower than a vector.
const SHAPES: [(usize, usize); 6] = [(70, 1000), (2, 3), (33, 1), (5, 7), (1000, 40), (3, 5000)];

fn cases(x: &Expr) -> Vec<(&'static str, Expr)> {
    vec![
        ("softmax", softmax(x)),
        ("x - max", minus_max(x)),
        ("standardize", standardize(x)),
        ("logsumexp", logsumexp(x)),
        (
            "softmax of x[::-1].T.T",
            softmax(&x.slice(&[SliceSpec::step(-1)]).t().t()),
        ),
        (
            "logsumexp, no keepdims",
            x.max_axis(1) + (x - x.max_axis(1).keepdims()).exp().sum_axis(1).log(),
        ),
    ]
}

#[test]
fn row_forms_agree_with_the_reference_for_any_thread_count() {
    let r = reference();
    for (rows, cols) in SHAPES {
        let a = data(rows, cols);
        let x = x(rows, cols);
        for (name, e) in cases(&x) {
            let what = format!("{name} {rows}x{cols}");
            let bind = [("x", ArgView::from(&a))];
            let want = r.compute_with(&e, &bind).unwrap();
            let one = cpu(1).compute_with(&e, &bind).unwrap();
            let two = cpu(2).compute_with(&e, &bind).unwrap();
            assert_agree(&what, &one, &want, 8);
            assert_eq!(
                bits(&one),
                bits(&two),
                "{what}: the same bits on 1 and 2 threads"
            );
            let has_rows = cpu(2).explain_with(&e, &bind).unwrap().row_form.is_some();
            assert_eq!(has_rows, rows >= 2, "{what}");
        }
    }
}

#[test]
fn row_forms_in_float32_agree_with_the_reference() {
    let a = data(70, 300).mapv(|v| v as f32);
    let x = Expr::symbol("x", DType::F32, &[70, 300]);
    let bind = [("x", ArgView::from(&a))];
    for (name, e) in cases(&x) {
        let want = reference().compute_with(&e, &bind).unwrap();
        let got = cpu(2).compute_with(&e, &bind).unwrap();
        assert_agree(name, &got, &want, 8);
    }
}

#[test]
fn row_forms_write_into_caller_outputs_of_any_layout() {
    let (rows, cols) = (70, 1000);
    let a = data(rows, cols);
    let x = x(rows, cols);
    let s = cpu(2);
    for (name, e) in cases(&x).into_iter().take(3) {
        let bind = [("x", ArgView::from(&a))];
        let want = reference().compute_with(&e, &bind).unwrap();
        let f = s.compile(&e).unwrap();
        // C order, Fortran order, and every other column of a wider array.
        let mut c = Array2::<f64>::zeros((rows, cols));
        f.call_into(&[ArgView::from(&a)], &mut c).unwrap();
        assert_agree(name, &DynArray::from(c), &want, 8);
        let mut fo = Array2::<f64>::zeros((rows, cols).f());
        f.call_into(&[ArgView::from(&a)], &mut fo).unwrap();
        assert_agree(name, &DynArray::from(fo), &want, 8);
        let mut wide = Array2::<f64>::from_elem((rows, 2 * cols), 7.0);
        let mut every_other = wide.slice_mut(ndarray::s![.., ..;2]);
        f.call_into(&[ArgView::from(&a)], every_other.view_mut())
            .unwrap();
        assert_agree(
            name,
            &DynArray::from(wide.slice(ndarray::s![.., ..;2]).to_owned()),
            &want,
            8,
        );
        assert!(wide.slice(ndarray::s![.., 1..;2]).iter().all(|&v| v == 7.0));
    }
    let f = s.compile(&softmax(&x)).unwrap();
    let mut wrong = Array2::<f64>::zeros((rows, cols + 1));
    assert!(f.call_into(&[ArgView::from(&a)], &mut wrong).is_err());
}

#[test]
fn softmax_and_standardize_together_share_one_row_form() {
    let (rows, cols) = (70, 500);
    let a = data(rows, cols);
    let x = x(rows, cols);
    let exprs = [softmax(&x), standardize(&x), x.max_axis(1)];
    let bind = [("x", ArgView::from(&a))];
    let got = cpu(2).compute_many_with(&exprs, &bind).unwrap();
    let r = reference();
    for (e, g) in exprs.iter().zip(&got) {
        assert_agree(&e.to_string(), g, &r.compute_with(e, &bind).unwrap(), 8);
    }
    let ex = cpu(2).explain_many_with(&exprs, &bind).unwrap();
    let rf = ex.row_form.expect("a row form");
    assert_eq!(rf.memory_read, 8 * (rows * cols) as u64, "x read once");
    assert_eq!(rf.memory_written, 8 * (2 * rows * cols + rows) as u64);
}

#[test]
fn reductions_that_need_every_row_keep_their_kernels() {
    let (rows, cols) = (100, 1000);
    let a = data(rows, cols);
    let x = x(rows, cols);
    let bind = [("x", ArgView::from(&a))];
    let r = reference();
    for e in [
        (&x - x.mean_axis(0)) / x.std_axis(0),
        &x - x.max(),
        &x / x.sum_axis(1).sum(),
        x.sum_axis(1),
        &x * 2.0,
        // A row reduction read backwards reads other rows than its own.
        &x.sum_axis(1).slice(&[SliceSpec::step(-1)]).expand_dims(1) + &x,
    ] {
        let ex = cpu(2).explain_with(&e, &bind).unwrap();
        assert!(ex.row_form.is_none(), "{e}");
        let got = cpu(2).compute_with(&e, &bind).unwrap();
        assert_agree(&e.to_string(), &got, &r.compute_with(&e, &bind).unwrap(), 8);
    }
}

/// The row form's passes are ordinary kernel IR: the interpreter (the IR oracle) runs them
/// over the whole arrays, in order, and agrees with the reference evaluator.
#[test]
fn the_interpreter_runs_the_row_form_passes() {
    let (rows, cols) = (9, 13);
    let a = data(rows, cols);
    let x = x(rows, cols);
    // (The input read through views is left to the session tests above: views are applied by
    // the executor, outside the IR.)
    for (name, e) in cases(&x).into_iter().filter(|(n, _)| !n.contains("[::-1]")) {
        let shapes = |n: &str| (n == "x").then(|| vec![rows, cols]);
        let l = opt::lower_many(std::slice::from_ref(&e), &shapes, true).unwrap();
        let plan = opt::partition(&l, opt::Partition::Fused);
        let rp = plan.rows.expect("a row form");
        let mut temps: Vec<Option<DynArray>> = vec![None; 64];
        for s in &rp.steps {
            let held: Vec<DynArray> = s
                .args
                .iter()
                .zip(&s.arg_shapes)
                .map(|(b, shape)| match b {
                    opt::Buf::Input(0) => DynArray::from(a.clone()).reshaped(shape).unwrap(),
                    opt::Buf::Temp(t) => temps[*t as usize]
                        .as_ref()
                        .unwrap()
                        .reshaped(shape)
                        .unwrap(),
                    b => panic!("unexpected argument {b:?}"),
                })
                .collect();
            let views: Vec<ArgView<'_>> = held.iter().map(|h| h.view()).collect();
            let outs = interp::run_many(&s.kernel, &views, &s.shape, &s.reduce_axes).unwrap();
            for (o, t) in outs.into_iter().zip(&s.temps) {
                temps[*t as usize] = Some(o);
            }
        }
        let (t, shape) = &rp.results[0];
        let got = temps[*t as usize]
            .as_ref()
            .unwrap()
            .reshaped(shape)
            .unwrap();
        let want = reference()
            .compute_with(&e, &[("x", ArgView::from(&a))])
            .unwrap();
        assert_agree(name, &got, &want, 8);
    }
}

#[test]
fn without_the_row_form_the_plan_runs_as_its_kernels() {
    let (rows, cols) = (70, 1000);
    let a = data(rows, cols);
    let e = softmax(&x(rows, cols));
    let bind = [("x", ArgView::from(&a))];
    let s = Session::with_options(
        Options::default()
            .with_device(Device::Cpu)
            .with_threads(2)
            .with_row_form(false),
    );
    let ex = s.explain_with(&e, &bind).unwrap();
    assert!(ex.row_form.is_none());
    assert_eq!(ex.kernels.len(), 3);
    let before = s.stats().kernels_launched;
    let got = s.compute_with(&e, &bind).unwrap();
    assert_eq!(s.stats().kernels_launched - before, 3);
    let want = reference().compute_with(&e, &bind).unwrap();
    assert_agree("softmax as kernels", &got, &want, 8);
    // The row form launches its four passes (per block, counted once).
    let s = cpu(2);
    let before = s.stats().kernels_launched;
    s.compute_with(&e, &bind).unwrap();
    assert_eq!(s.stats().kernels_launched - before, 4);
}

/// The cost model sees what the CPU runs: with a row form, the CPU's estimated memory time is
/// the kernels' scaled to the row form's bytes (X read once, the result written once), and
/// the compute time is the same.
#[test]
fn the_cpu_estimate_counts_the_row_forms_bytes() {
    let (rows, cols) = (2000, 1000);
    let a = data(rows, cols);
    let e = softmax(&x(rows, cols));
    let bind = [("x", ArgView::from(&a))];
    let cpu_estimate = |ex: &fusebox::Explain| {
        ex.estimates
            .iter()
            .find(|d| d.device == "cpu")
            .expect("a cpu estimate")
            .estimate
    };
    let kernels = Session::with_options(
        Options::default()
            .with_device(Device::Cpu)
            .with_threads(2)
            .with_row_form(false),
    )
    .explain_with(&e, &bind)
    .unwrap();
    let rowed = cpu(2).explain_with(&e, &bind).unwrap();
    let rf = rowed.row_form.as_ref().expect("softmax has a row form");
    let kernel_bytes: u64 = kernels
        .kernels
        .iter()
        .map(|k| k.bytes_read + k.bytes_written)
        .sum();
    let ratio = (rf.memory_read + rf.memory_written) as f64 / kernel_bytes as f64;
    // X (16 MB) is read by three kernels and the result written once; the row form reads it once.
    assert!(ratio < 0.6, "ratio {ratio}");
    let (k, r) = (cpu_estimate(&kernels), cpu_estimate(&rowed));
    assert!(k.memory_s > 0.0);
    assert!(
        (r.memory_s - k.memory_s * ratio).abs() <= 1e-9 * k.memory_s,
        "row form {} vs kernels {} x {ratio}",
        r.memory_s,
        k.memory_s
    );
    assert_eq!(r.compute_s, k.compute_s);
}
