//! Shape operations (issue 18, item 4): transpose/permute, reshape, expand_dims, squeeze,
//! broadcast_to, slicing with steps. Oracles: ndarray's own operations and index lists written
//! from Python's slicing rules (`list(range(n))[a:b:c]`), and the reference evaluator
//! (`Device::Reference`, which implements views with ndarray independently of the strided path).
//! Every case runs on the CPU, and on the GPU where one is present.
mod common;
use fusebox::{ArgView, DType, Device, DynArray, Error, Expr, Options, Session, SliceSpec, ViewOp};
use ndarray::{array, Array, Array1, Array2, ArrayD, Axis, IxDyn};

fn session(d: Device) -> Session {
    Session::with_options(Options::default().with_device(d))
}

fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    if common::gpu_available() {
        d.push(Device::Gpu(0));
    }
    d
}

fn grid(shape: &[usize]) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|v| v as f64 * 0.5 - 3.0).collect()).unwrap()
}

/// `e` on every device equals `want` exactly (views move elements; the arithmetic here is
/// exact in f64), and the reference evaluator agrees.
fn check(what: &str, e: &Expr, want: &ArrayD<f64>) {
    let r = session(Device::Reference).compute(e).unwrap();
    assert_eq!(
        r.as_array::<f64>().unwrap().to_owned(),
        *want,
        "{what}: reference"
    );
    for d in devices() {
        let got = session(d)
            .compute(e)
            .unwrap_or_else(|err| panic!("{what} on {d}: {err}"));
        assert_eq!(got.shape(), want.shape(), "{what} on {d}");
        assert_eq!(
            got.as_array::<f64>().unwrap().to_owned(),
            *want,
            "{what} on {d}"
        );
    }
}

/// Elements `first + k * step` along `axis`, as Python's slicing gives them.
fn pick(a: &ArrayD<f64>, axis: usize, idx: &[usize]) -> ArrayD<f64> {
    a.select(Axis(axis), idx)
}

#[test]
fn transpose_is_fused_into_one_kernel_reading_strides() {
    let a = grid(&[3, 4]);
    let b = grid(&[4, 3]);
    let s = session(Device::Cpu);
    let x = s.data(a.clone());
    let y = s.data(b.clone());
    let e = x.t() * 2.0 + &y;
    let want = (&a.t() * 2.0 + &b).into_dyn();
    check("x.T * 2 + y", &e, &want);
    // One kernel, reading each input once and writing once: the transpose is not materialized.
    let before = s.stats();
    s.compute(&e).unwrap();
    let st = s.stats();
    assert_eq!(st.kernels_launched - before.kernels_launched, 1);
    assert_eq!(st.bytes_read - before.bytes_read, 2 * 12 * 8);
    assert_eq!(st.bytes_written - before.bytes_written, 12 * 8);
    // permute with negative axes, 3-d.
    let c = grid(&[2, 3, 4]);
    let z = s.data(c.clone());
    let want = c.view().permuted_axes(IxDyn(&[2, 0, 1])).to_owned();
    check(
        "transpose(-1, 0, 1)",
        &(z.transpose(&[-1, 0, 1]) + 0.0),
        &want,
    );
    check(
        "transpose(-1, 0, 1) alone",
        &z.transpose(&[-1, 0, 1]),
        &want,
    );
    check("x.T.T", &z.t().t(), &c);
    // Identity views vanish: the result is the input's elements.
    check("squeeze() of no length-1 axis", &z.squeeze(), &c);
    check("reshape to its own shape", &z.reshape(&[2, 3, 4]), &c);
    check("x[:]", &z.slice(&[SliceSpec::all()]), &c);
}

#[test]
fn slicing_with_steps_follows_python() {
    let a = grid(&[10, 6]);
    let s = session(Device::Cpu);
    let x = s.data(a.clone());
    // x[::2] -> rows 0, 2, 4, 6, 8
    check(
        "x[::2]",
        &x.slice(&[SliceSpec::step(2)]),
        &pick(&a, 0, &[0, 2, 4, 6, 8]),
    );
    // x[::-3] -> 9, 6, 3, 0
    check(
        "x[::-3]",
        &x.slice(&[SliceSpec::step(-3)]),
        &pick(&a, 0, &[9, 6, 3, 0]),
    );
    // x[8:2:-2, 1::2] -> rows 8, 6, 4; columns 1, 3, 5
    let e = x.slice(&[
        SliceSpec::new(Some(8), Some(2), -2),
        SliceSpec::new(Some(1), None, 2),
    ]);
    check(
        "x[8:2:-2, 1::2]",
        &e,
        &pick(&pick(&a, 0, &[8, 6, 4]), 1, &[1, 3, 5]),
    );
    // x[-2:] -> 8, 9; x[:, -1:0:-2] -> 5, 3, 1
    check(
        "x[-2:]",
        &x.slice(&[SliceSpec::new(Some(-2), None, 1)]),
        &pick(&a, 0, &[8, 9]),
    );
    check(
        "x[:, -1:0:-2]",
        &x.slice_axis(-1, SliceSpec::new(Some(-1), Some(0), -2)),
        &pick(&a, 1, &[5, 3, 1]),
    );
    // Fused with arithmetic, two slices of one input: x[1:] - x[:-1] (a difference).
    let d = x.slice(&[SliceSpec::new(Some(1), None, 1)])
        - x.slice(&[SliceSpec::new(None, Some(-1), 1)]);
    let want = (&a.slice(ndarray::s![1.., ..]) - &a.slice(ndarray::s![..-1, ..])).into_dyn();
    check("x[1:] - x[:-1]", &d, &want);
    // 0-length: x[5:2] has shape (0, 6); reductions of it follow NumPy (sum 0).
    let empty = x.slice(&[SliceSpec::range(5, 2)]);
    check("x[5:2]", &empty, &ArrayD::zeros(IxDyn(&[0, 6])));
    check(
        "x[5:2].sum(0)",
        &empty.sum_axis(0),
        &ArrayD::zeros(IxDyn(&[6])),
    );
    // Out-of-range bounds clamp, as in Python.
    check(
        "x[100:-100:-4]",
        &x.slice(&[SliceSpec::new(Some(100), Some(-100), -4)]),
        &pick(&a, 0, &[9, 5, 1]),
    );
}

#[test]
fn reshape_expand_dims_squeeze_broadcast_to() {
    let a = grid(&[2, 6]);
    let s = session(Device::Cpu);
    let x = s.data(a.clone());
    let flat = a.iter().cloned().collect::<Vec<_>>();
    let as_shape = |sh: &[usize]| ArrayD::from_shape_vec(IxDyn(sh), flat.clone()).unwrap();
    check("reshape(3, 4)", &x.reshape(&[3, 4]), &as_shape(&[3, 4]));
    check(
        "reshape(-1, 2, 2)",
        &x.reshape(&[-1, 2, 2]),
        &as_shape(&[3, 2, 2]),
    );
    check(
        "reshape(-1) * 2",
        &(x.reshape(&[-1]) * 2.0),
        &as_shape(&[12]).mapv(|v| v * 2.0),
    );
    // The reshape of a transpose reads the transposed elements in C order (NumPy copies here).
    let t: Vec<f64> = a.t().iter().cloned().collect();
    let want = ArrayD::from_shape_vec(IxDyn(&[4, 3]), t).unwrap();
    check("x.T.reshape(4, 3)", &x.t().reshape(&[4, 3]), &want);
    // The reshape of a computed expression (materialized at a plan split).
    let want = as_shape(&[6, 2]).mapv(|v| v * v + 1.0);
    check(
        "(x*x + 1).reshape(6, 2)",
        &(&x * &x + 1.0).reshape(&[6, 2]),
        &want,
    );
    // expand_dims: x[:, None] - y[None, :], an outer difference.
    let u = Array1::from(vec![1.0, 2.0, 4.0]);
    let v = Array1::from(vec![0.5, -1.0]);
    let (ue, ve) = (s.data(u.clone()), s.data(v.clone()));
    let e = ue.expand_dims(1) - ve.expand_dims(0);
    let want = Array2::from_shape_fn((3, 2), |(i, j)| u[i] - v[j]).into_dyn();
    check("u[:, None] - v[None, :]", &e, &want);
    check(
        "expand_dims(-1)",
        &ue.expand_dims(-1),
        &u.clone().into_shape_with_order((3, 1)).unwrap().into_dyn(),
    );
    // squeeze
    let c = grid(&[1, 3, 1]);
    let z = s.data(c.clone());
    let want = c.clone().into_shape_with_order(IxDyn(&[3])).unwrap();
    check("squeeze()", &z.squeeze(), &want);
    check(
        "squeeze(-1)",
        &z.squeeze_axis(-1),
        &c.clone().into_shape_with_order(IxDyn(&[1, 3])).unwrap(),
    );
    // broadcast_to reads the same elements again (stride 0), fused with arithmetic.
    let e = ue.broadcast_to(&[2, 3]) * 3.0;
    let want = Array2::from_shape_fn((2, 3), |(_, j)| u[j] * 3.0).into_dyn();
    check("broadcast_to((2, 3)) * 3", &e, &want);
    // A reduction over a view: x.T.sum(axis=0) is x.sum(axis=1).
    check("x.T.sum(0)", &x.t().sum_axis(0), &a.sum_axis(Axis(1)));
    // A view of a reduction: x.sum(1)[::-1] (the sum materialized, then read backwards).
    let sums = a.sum_axis(Axis(1));
    check(
        "x.sum(1)[::-1]",
        &x.sum_axis(1).slice(&[SliceSpec::step(-1)]),
        &pick(&sums, 0, &[1, 0]),
    );
    // Views of a weak literal: a 0-d array of its default dtype.
    check(
        "broadcast_to(2.0, (2,))",
        &Expr::from(2.0).broadcast_to(&[2]),
        &ArrayD::from_elem(IxDyn(&[2]), 2.0),
    );
    // 0-length: a transpose of a (0, 3) array.
    let e0 = s.data(ArrayD::<f64>::zeros(IxDyn(&[0, 3])));
    check("zeros((0, 3)).T", &e0.t(), &ArrayD::zeros(IxDyn(&[3, 0])));
    check(
        "broadcast_to(u, (0, 3))",
        &ue.broadcast_to(&[0, 3]),
        &ArrayD::zeros(IxDyn(&[0, 3])),
    );
    check(
        "zeros((0, 3))[None] + 1",
        &(e0.expand_dims(0) + 1.0),
        &ArrayD::zeros(IxDyn(&[1, 0, 3])),
    );
    check(
        "zeros((0, 3))[::-1, ::2]",
        &e0.slice(&[SliceSpec::step(-1), SliceSpec::step(2)]),
        &ArrayD::zeros(IxDyn(&[0, 2])),
    );
    check(
        "zeros((0, 3)).reshape(3, -1)",
        &e0.reshape(&[3, -1]),
        &ArrayD::zeros(IxDyn(&[3, 0])),
    );
}

#[test]
fn bad_shape_arguments_are_typed_errors() {
    let x = Expr::symbol("x", DType::F64, &[2, 3]);
    let view_err = |e: Expr, op: &str, msg: &str| match e.meta() {
        Err(Error::View {
            op: o,
            shape,
            message,
        }) => {
            assert_eq!(o, op);
            assert_eq!(shape, vec![2, 3]);
            assert!(message.contains(msg), "{message}");
        }
        other => panic!("{op}: {other:?}"),
    };
    view_err(
        x.transpose(&[0, 0]),
        "transpose",
        "repeated axis in transpose",
    );
    view_err(x.transpose(&[0]), "transpose", "axes don't match array");
    view_err(
        x.reshape(&[4, 2]),
        "reshape",
        "cannot reshape array of size 6 into shape (4, 2)",
    );
    view_err(
        x.reshape(&[-1, -1]),
        "reshape",
        "can only specify one unknown dimension",
    );
    view_err(
        x.reshape(&[-2, 3]),
        "reshape",
        "negative dimensions not allowed",
    );
    view_err(
        x.reshape(&[-1, 4]),
        "reshape",
        "cannot reshape array of size 6",
    );
    view_err(x.squeeze_axis(0), "squeeze", "size not equal to one");
    view_err(
        x.broadcast_to(&[4, 3, 2]),
        "broadcast_to",
        "could not be broadcast",
    );
    view_err(
        x.broadcast_to(&[3]),
        "broadcast_to",
        "could not be broadcast",
    );
    view_err(
        x.slice(&[SliceSpec::step(0)]),
        "slice",
        "slice step cannot be zero",
    );
    view_err(
        x.slice(&[SliceSpec::all(), SliceSpec::all(), SliceSpec::all()]),
        "slice",
        "too many indices for array",
    );
    let oob = |e: Expr, axis: isize, ndim: usize| match e.meta() {
        Err(Error::AxisOutOfBounds { axis: a, ndim: n }) => assert_eq!((a, n), (axis, ndim)),
        other => panic!("{other:?}"),
    };
    oob(x.transpose(&[0, 2]), 2, 2);
    oob(x.transpose(&[-3, 0]), -3, 2);
    oob(x.expand_dims(3), 3, 3);
    oob(x.expand_dims(-4), -4, 3);
    oob(x.squeeze_axis(2), 2, 2);
    oob(x.slice_axis(-3, SliceSpec::all()), -3, 2);
    assert!(matches!(
        x.view(ViewOp::ExpandDims(vec![0, 0])).meta(),
        Err(Error::DuplicateAxis { axis: 0 })
    ));
    // The error travels to compute (never a panic).
    let s = session(Device::Cpu);
    let d = s.data(grid(&[2, 3]));
    assert!(matches!(
        s.compute(&(d.reshape(&[5]) + 1.0)),
        Err(Error::View { .. })
    ));
    // A compiled function re-resolves its views for each call's shapes: a length that does not
    // fit is the same typed error at call time.
    let f = s.compile(&(x.reshape(&[3, -1]) * 2.0)).unwrap();
    let ok = grid(&[2, 3]);
    assert_eq!(f.call(&[ArgView::from(&ok)]).unwrap().shape(), &[3, 2]);
    let bad = grid(&[2, 5]);
    assert!(matches!(
        f.call(&[ArgView::from(&bad)]),
        Err(Error::View { .. })
    ));
}

#[test]
fn compiled_views_take_any_lengths_and_strided_inputs() {
    let s = session(Device::Cpu);
    let x = Expr::symbol("x", DType::F64, &[0, 0]);
    let f = s
        .compile(&(x.t().slice(&[SliceSpec::step(-1)]) + 1.0))
        .unwrap();
    let g = s.compile(&x.t().reshape(&[-1])).unwrap();
    for shape in [[3usize, 4], [5, 2], [1, 7], [0, 3]] {
        let a = grid(&shape);
        let want = a
            .t()
            .slice(ndarray::s![..;-1, ..])
            .mapv(|v| v + 1.0)
            .into_dyn();
        let got = f.call(&[ArgView::from(&a)]).unwrap();
        assert_eq!(got.as_array::<f64>().unwrap().to_owned(), want, "{shape:?}");
        // The input itself strided (a transposed ndarray view): views compose with its strides.
        let at = a.t();
        let want = at
            .t()
            .slice(ndarray::s![..;-1, ..])
            .mapv(|v| v + 1.0)
            .into_dyn();
        let got = f.call(&[ArgView::from(at.view().into_dyn())]).unwrap();
        assert_eq!(
            got.as_array::<f64>().unwrap().to_owned(),
            want,
            "{shape:?}, strided"
        );
        // A reshape of a strided input: copied first (NumPy copies too), values in C order.
        let want: Vec<f64> = a.t().iter().cloned().collect();
        let got = g.call(&[ArgView::from(&a)]).unwrap();
        assert_eq!(
            got.as_array::<f64>()
                .unwrap()
                .iter()
                .cloned()
                .collect::<Vec<_>>(),
            want
        );
        let want: Vec<f64> = a.iter().cloned().collect();
        let got = g.call(&[ArgView::from(at.view().into_dyn())]).unwrap();
        assert_eq!(
            got.as_array::<f64>()
                .unwrap()
                .iter()
                .cloned()
                .collect::<Vec<_>>(),
            want
        );
    }
}

#[test]
fn views_keep_dtypes_and_print_as_numpy() {
    let s = session(Device::Cpu);
    let b = s.data(array![[true, false, true], [false, false, true]]);
    let r: DynArray = s.compute(&b.t()).unwrap();
    assert_eq!(r.dtype(), DType::Bool);
    assert_eq!(
        r.as_array::<bool>().unwrap().to_owned(),
        array![[true, false], [false, false], [true, true]].into_dyn()
    );
    let i = s.data(Array::from_shape_vec((2, 2), vec![1i32, 2, 3, 4]).unwrap());
    let r = s.compute(&(i.slice(&[SliceSpec::step(-1)]) * 2)).unwrap();
    assert_eq!(
        r.as_array::<i32>().unwrap().to_owned(),
        array![[6, 8], [2, 4]].into_dyn()
    );
    let x = Expr::symbol("x", DType::F64, &[2, 3]);
    assert_eq!(x.t().to_string(), "transpose(x, None)");
    assert_eq!(
        x.slice(&[SliceSpec::new(Some(1), None, -2)]).to_string(),
        "slice(x, [1::-2])"
    );
    assert_eq!(x.reshape(&[-1]).to_string(), "reshape(x, (-1,))");
}

#[test]
fn views_into_caller_outputs_and_in_place() {
    let s = session(Device::Cpu);
    // compute_into: x[::-1] * 2 written straight into a caller's array.
    let a = grid(&[7]);
    let x = s.data(a.clone());
    let mut out = Array1::<f64>::zeros(7);
    s.compute_into(&(x.slice(&[SliceSpec::step(-1)]) * 2.0), &mut out)
        .unwrap();
    let mut want: Vec<f64> = a.iter().map(|v| v * 2.0).collect();
    want.reverse();
    assert_eq!(out.to_vec(), want);
    // In place through a view: out = x.T + 1 with out being x itself (a square matrix). The
    // transposed read overlaps the output other than exactly, so the result is computed into
    // a fresh buffer and copied: every element is the original transpose plus one.
    let n = 64usize;
    let sym = Expr::symbol("m", DType::F64, &[n, n]);
    let f = s.compile(&(sym.t() + 1.0)).unwrap();
    let mut m = Array2::from_shape_fn((n, n), |(i, j)| (i * n + j) as f64);
    let want = m.t().mapv(|v| v + 1.0);
    let p = m.as_mut_ptr();
    // SAFETY: both views cover `m`'s n * n elements, and `m` outlives the call.
    let (view, out) = unsafe {
        (
            ndarray::ArrayView2::from_shape_ptr((n, n), p as *const f64),
            ndarray::ArrayViewMut2::from_shape_ptr((n, n), p),
        )
    };
    f.call_into(&[view.into()], out).unwrap();
    assert_eq!(m, want);
}

#[test]
fn unfused_plans_and_compute_with_take_views() {
    let a = grid(&[4, 5]);
    let want = (&a.t().slice(ndarray::s![1..;2, ..]) * 3.0).into_dyn();
    let sym = Expr::symbol("x", DType::F64, &[4, 5]);
    let e = sym.t().slice(&[SliceSpec::new(Some(1), None, 2)]) * 3.0;
    for s in [
        Session::with_options(
            Options::default()
                .with_device(Device::Cpu)
                .with_optimize(false),
        ),
        session(Device::Cpu),
    ] {
        let got = s.compute_with(&e, &[("x", ArgView::from(&a))]).unwrap();
        assert_eq!(got.as_array::<f64>().unwrap().to_owned(), want);
    }
}

#[test]
fn views_of_device_resident_arrays() {
    if !common::gpu_available() {
        return;
    }
    // A view of an array already on the GPU: WGSL kernels read C-ordered arrays, so the view is
    // gathered (downloaded, viewed, uploaded) and the result stays on the device.
    let s = session(Device::Gpu(0));
    let a = grid(&[3, 5]);
    let ad = s.to_device(&ArgView::from(&a)).unwrap();
    let x = Expr::symbol("x", DType::F64, &[3, 5]);
    let e = x.t().slice(&[SliceSpec::step(-2)]) * 2.0 + 1.0;
    let yd = s.compute_on_device(&e, &[("x", &ad)]).unwrap();
    let y = s.to_host(&yd).unwrap();
    let want = a
        .t()
        .slice(ndarray::s![..;-2, ..])
        .mapv(|v| v * 2.0 + 1.0)
        .into_dyn();
    assert_eq!(y.as_array::<f64>().unwrap().to_owned(), want);
}

#[test]
fn large_views_split_over_threads() {
    // Large enough for the CPU to split the loop over its threads: negative and transposed
    // strides in every chunk.
    let n = 1 << 20;
    let a = ArrayD::from_shape_vec(IxDyn(&[n]), (0..n).map(|v| v as f64).collect()).unwrap();
    let s = session(Device::Cpu);
    let x = s.data(a.clone());
    let e = x.slice(&[SliceSpec::step(-1)]) * 2.0 + &x;
    let want = ArrayD::from_shape_fn(IxDyn(&[n]), |i| (n - 1 - i[0]) as f64 * 2.0 + i[0] as f64);
    check("x[::-1] * 2 + x", &e, &want);
    let m = grid(&[1024, 768]);
    let y = s.data(m.clone());
    let want = (&m.t() - 1.0).into_dyn();
    check("y.T - 1", &(y.t() - 1.0), &want);
    check("y.T.sum(0)", &y.t().sum_axis(0), &m.sum_axis(Axis(1)));
}
