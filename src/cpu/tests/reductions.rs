//! Reductions along axes, every reduce op, multi-output kernels.
use super::*;

/// A kernel reducing one input of dtype `dt` with each of `ops` (one output each), the operand
/// cast to the op's accumulate dtype as the optimizer does.
fn reduce_kernel(ops: &[ReduceOp], dt: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(dt);
    let x = b.push(Inst::Load { input: i }, dt);
    let outs = ops
        .iter()
        .map(|&op| {
            let (c, _) = op.signature(dt).unwrap();
            let value = if c == dt {
                x
            } else {
                b.push(Inst::Cast { arg: x }, c)
            };
            Output::Reduce { op, value }
        })
        .collect();
    b.finish_many(outs)
}

const DTYPES: [DType; 5] = [DType::Bool, DType::I32, DType::I64, DType::F32, DType::F64];

/// A pseudo-random value for flat position `i`: few distinct values (ties for arg-reductions),
/// floats that are dyadic with products kept near 1, so float sums and products are exact in
/// any order (and `nan_every`: a NaN at positions divisible by it).
fn sample(dt: DType, i: usize, nan_every: usize) -> V {
    let h = (i as u64 ^ 0x9e37_79b9).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 40;
    let small = (h % 7) as i64 - 3;
    let f = match h % 400 {
        0 => 2.0,
        1 => 0.5,
        2..=9 => 0.0,
        r if r % 2 == 0 => 1.0,
        _ => -1.0,
    };
    let f = if nan_every > 0 && i % nan_every == nan_every - 1 {
        f64::NAN
    } else {
        f
    };
    match dt {
        DType::Bool => V::B(h.is_multiple_of(3)),
        DType::I32 => V::I32(small as i32),
        DType::I64 => V::I64(small),
        DType::F32 => V::F32(f as f32),
        DType::F64 => V::F64(f),
        _ => unreachable!("the scalar model covers V_DTYPES only"),
    }
}

/// Layouts of an n-d operand; all show the same logical values except `Broadcast`, whose
/// values repeat along the leading axis.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NdLayout {
    Contiguous,
    Transposed,
    Reversed,
    Broadcast,
}

/// Storage for an operand of logical shape `shape` in `layout` (see `nd_view`).
fn nd_storage(dt: DType, shape: &[usize], layout: NdLayout, nan_every: usize) -> DynArray {
    let n: usize = shape.iter().product();
    match layout {
        NdLayout::Contiguous | NdLayout::Reversed => {
            let v: Vec<V> = (0..n).map(|i| sample(dt, i, nan_every)).collect();
            to_array(&v, dt, shape)
        }
        NdLayout::Transposed => {
            // Storage of the reversed shape; element [j..] holds logical element [..j].
            let rev: Vec<usize> = shape.iter().rev().copied().collect();
            let v: Vec<V> = (0..n)
                .map(|s| {
                    let mut rest = s;
                    let mut idx = vec![0; rev.len()];
                    for d in (0..rev.len()).rev() {
                        idx[d] = rest % rev[d];
                        rest /= rev[d];
                    }
                    let flat = idx
                        .iter()
                        .zip(shape.iter().rev())
                        .rev()
                        .fold(0, |acc, (i, d)| acc * d + i);
                    sample(dt, flat, nan_every)
                })
                .collect();
            to_array(&v, dt, &rev)
        }
        NdLayout::Broadcast => {
            let inner: Vec<usize> = shape.iter().skip(1).copied().collect();
            let m: usize = inner.iter().product();
            let v: Vec<V> = (0..m).map(|i| sample(dt, i, nan_every)).collect();
            let mut s = vec![1];
            s.extend(inner);
            to_array(&v, dt, &s)
        }
    }
}

fn nd_view(a: &DynArray, layout: NdLayout) -> ArgView<'_> {
    macro_rules! v {
        ($x:expr) => {
            match layout {
                NdLayout::Transposed => $x.view().reversed_axes().into(),
                NdLayout::Reversed => {
                    let mut v = $x.view();
                    for ax in 0..v.ndim() {
                        v.invert_axis(ndarray::Axis(ax));
                    }
                    v.into()
                }
                _ => $x.view().into(),
            }
        };
    }
    match a {
        DynArray::Bool(x) => v!(x),
        DynArray::I32(x) => v!(x),
        DynArray::I64(x) => v!(x),
        DynArray::F32(x) => v!(x),
        DynArray::F64(x) => v!(x),
        _ => unreachable!("the scalar model covers V_DTYPES only"),
    }
}

/// Every sorted axis set worth testing for rank `nd`: all, none, each single axis, each pair.
fn axis_sets(nd: usize) -> Vec<Vec<usize>> {
    let mut v = vec![(0..nd).collect::<Vec<_>>(), vec![]];
    for a in 0..nd {
        v.push(vec![a]);
        for b in a + 1..nd {
            v.push(vec![a, b]);
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Compare backend results with the interpreter's: exact (any NaN equals any NaN), except
/// float sums and products, which may differ by rounding since the order differs.
fn check_outputs(what: &str, k: &Kernel, got: &[DynArray], want: &[DynArray]) {
    assert_eq!(got.len(), want.len(), "{what}: number of outputs");
    for (o, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.shape(), w.shape(), "{what}: output {o} shape");
        assert_eq!(g.dtype(), w.dtype(), "{what}: output {o} dtype");
        let rounding = matches!(
            k.outputs[o],
            Output::Reduce {
                op: ReduceOp::Sum | ReduceOp::Prod,
                ..
            }
        );
        for (i, (a, b)) in values(g).iter().zip(values(w)).enumerate() {
            let ok = a.same_bits(b)
                || (rounding && {
                    let (x, y) = (a.as_f64(), b.as_f64());
                    let tol = if g.dtype() == DType::F32 { 1e-5 } else { 1e-12 };
                    (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0)
                });
            assert!(
                ok,
                "{what}: output {o} ({:?}) element {i}: got {a:?}, expected {b:?}",
                k.outputs[o]
            );
        }
    }
}

/// Run `k` on the backend and in the interpreter over `shape` reducing `axes`; both must agree
/// (including on errors).
fn diff_run(
    be: &CpuBackend,
    what: &str,
    k: &Kernel,
    inputs: &[ArgView<'_>],
    shape: &[usize],
    axes: &[usize],
) {
    let ck = be.compile(k).unwrap();
    let got = be.run_many(&ck, inputs, shape, axes);
    let want = crate::interp::run_many(k, inputs, shape, axes);
    match (got, want) {
        (Ok(g), Ok(w)) => check_outputs(what, k, &g, &w),
        (Err(a @ Error::EmptyReduction { .. }), Err(b)) => assert_eq!(a, b, "{what}"),
        (g, w) => panic!(
            "{what}: got {:?}, expected {:?}",
            g.map(|_| ()),
            w.map(|_| ())
        ),
    }
}

const VALUE_OPS: [ReduceOp; 6] = [
    ReduceOp::Sum,
    ReduceOp::Prod,
    ReduceOp::Min,
    ReduceOp::Max,
    ReduceOp::Any,
    ReduceOp::All,
];
const ARG_OPS: [ReduceOp; 2] = [ReduceOp::ArgMin, ReduceOp::ArgMax];

#[test]
fn every_reduction_dtype_axes_and_layout_matches_the_interpreter() {
    let be = CpuBackend::new(3).unwrap();
    // Small shapes: every layout and axis set; empty and one-element shapes included.
    let small: &[&[usize]] = &[&[0], &[1], &[7], &[4, 0, 3], &[5, 7], &[2, 3, 5], &[1, 9]];
    for dt in DTYPES {
        let kernels = [reduce_kernel(&VALUE_OPS, dt), reduce_kernel(&ARG_OPS, dt)];
        for shape in small {
            for layout in [
                NdLayout::Contiguous,
                NdLayout::Transposed,
                NdLayout::Reversed,
                NdLayout::Broadcast,
            ] {
                let a = nd_storage(dt, shape, layout, 0);
                let v = nd_view(&a, layout);
                for axes in axis_sets(shape.len()) {
                    for k in &kernels {
                        let what = format!("{dt} {shape:?} {layout:?} axes {axes:?}");
                        diff_run(&be, &what, k, std::slice::from_ref(&v), shape, &axes);
                    }
                }
            }
        }
    }
}

#[test]
fn large_reductions_match_the_interpreter() {
    // Above the parallel threshold: full reductions, many kept positions (threads over kept
    // positions), few kept positions (threads within each), outer axes (vertical).
    let be = CpuBackend::new(3).unwrap();
    let shapes: &[(&[usize], &[&[usize]])] = &[
        (&[70001], &[&[0]]),
        (&[300, 257], &[&[0], &[1], &[0, 1]]),
        (&[3, 30001], &[&[0], &[1]]),
        (&[30001, 3], &[&[0], &[1]]),
        (&[5000, 21], &[&[0], &[1]]),
    ];
    for dt in DTYPES {
        let kernels = [reduce_kernel(&VALUE_OPS, dt), reduce_kernel(&ARG_OPS, dt)];
        for (shape, axes_list) in shapes {
            for layout in [
                NdLayout::Contiguous,
                NdLayout::Transposed,
                NdLayout::Broadcast,
            ] {
                if layout == NdLayout::Transposed && shape.len() == 1 {
                    continue;
                }
                let a = nd_storage(dt, shape, layout, 0);
                let v = nd_view(&a, layout);
                for axes in *axes_list {
                    for k in &kernels {
                        let what = format!("{dt} {shape:?} {layout:?} axes {axes:?}");
                        diff_run(&be, &what, k, std::slice::from_ref(&v), shape, axes);
                    }
                }
            }
        }
    }
}

#[test]
fn single_op_kernels_take_the_simd_loop_and_match() {
    // One reduction per kernel: the SIMD loop of each op and width, on contiguous data.
    let be = CpuBackend::new(3).unwrap();
    for dt in DTYPES {
        for op in VALUE_OPS.iter().chain(&ARG_OPS) {
            let k = reduce_kernel(&[*op], dt);
            for (shape, axes) in [
                (vec![1001], vec![0]),
                (vec![70001], vec![0]),
                (vec![50, 1001], vec![1]),
                (vec![50, 1001], vec![0]),
            ] {
                let a = nd_storage(dt, &shape, NdLayout::Contiguous, 0);
                let v = nd_view(&a, NdLayout::Contiguous);
                let what = format!("{op} {dt} {shape:?} axes {axes:?}");
                diff_run(&be, &what, &k, &[v], &shape, &axes);
            }
        }
    }
    let simd = |op, dt| be.compile(&reduce_kernel(&[op], dt)).unwrap().has_simd();
    for op in VALUE_OPS {
        assert!(simd(op, DType::F64), "{op} f64 has a SIMD loop");
        assert!(simd(op, DType::F32), "{op} f32 has a SIMD loop");
    }
    assert!(simd(ReduceOp::Min, DType::I32) && simd(ReduceOp::Max, DType::I64));
}

#[test]
fn nan_propagates_and_argmin_argmax_find_the_first_nan() {
    let be = CpuBackend::new(3).unwrap();
    for dt in [DType::F32, DType::F64] {
        let kernels = [reduce_kernel(&VALUE_OPS, dt), reduce_kernel(&ARG_OPS, dt)];
        for (shape, nan_every) in [(vec![7], 3), (vec![70001], 50_000), (vec![300, 257], 1000)] {
            let a = nd_storage(dt, &shape, NdLayout::Contiguous, nan_every);
            let v = nd_view(&a, NdLayout::Contiguous);
            for axes in axis_sets(shape.len()) {
                for k in &kernels {
                    let what = format!("NaN {dt} {shape:?} axes {axes:?}");
                    diff_run(&be, &what, k, std::slice::from_ref(&v), &shape, &axes);
                }
            }
        }
        // Exact expectations on one case.
        let x: Vec<f64> = vec![1.0, f64::NAN, -3.0, f64::NAN, 5.0];
        let vals: Vec<V> = x
            .iter()
            .map(|f| match dt {
                DType::F32 => V::F32(*f as f32),
                _ => V::F64(*f),
            })
            .collect();
        let arr = to_array(&vals, dt, &[5]);
        let k = be
            .compile(&reduce_kernel(
                &[
                    ReduceOp::Max,
                    ReduceOp::Min,
                    ReduceOp::ArgMin,
                    ReduceOp::ArgMax,
                ],
                dt,
            ))
            .unwrap();
        let r = be
            .run_many(&k, &[nd_view(&arr, NdLayout::Contiguous)], &[5], &[0])
            .unwrap();
        assert!(r[0].scalar_f64().unwrap().is_nan());
        assert!(r[1].scalar_f64().unwrap().is_nan());
        assert_eq!(r[2].scalar_f64(), Some(1.0));
        assert_eq!(r[3].scalar_f64(), Some(1.0));
    }
}

#[test]
fn argmin_argmax_take_the_first_extremum() {
    let be = backend();
    let k = be.compile(&reduce_kernel(&ARG_OPS, DType::I64)).unwrap();
    let x = ndarray::arr2(&[[3i64, 1, 1, 3], [2, 2, 2, 2], [0, 5, 0, 5]]);
    let r = be.run_many(&k, &[(&x).into()], &[3, 4], &[1]).unwrap();
    assert_eq!(
        r[0].clone().into_i64().unwrap().into_raw_vec_and_offset().0,
        vec![1, 0, 0]
    );
    assert_eq!(
        r[1].clone().into_i64().unwrap().into_raw_vec_and_offset().0,
        vec![0, 0, 1]
    );
    let r = be.run_many(&k, &[(&x).into()], &[3, 4], &[0]).unwrap();
    assert_eq!(
        r[0].clone().into_i64().unwrap().into_raw_vec_and_offset().0,
        vec![2, 0, 2, 1]
    );
    assert_eq!(
        r[1].clone().into_i64().unwrap().into_raw_vec_and_offset().0,
        vec![0, 2, 1, 2]
    );
    // Over both axes: the flat C-order position.
    let r = be.run_many(&k, &[(&x).into()], &[3, 4], &[0, 1]).unwrap();
    assert_eq!(r[0].scalar_f64(), Some(8.0));
    assert_eq!(r[1].scalar_f64(), Some(9.0));
    // Bool: the first false / the first true.
    let kb = be.compile(&reduce_kernel(&ARG_OPS, DType::Bool)).unwrap();
    let b = ndarray::arr1(&[true, true, false, true, false]);
    let r = be.run_many(&kb, &[(&b).into()], &[5], &[0]).unwrap();
    assert_eq!(r[0].scalar_f64(), Some(2.0));
    assert_eq!(r[1].scalar_f64(), Some(0.0));
}

#[test]
fn empty_reductions_give_identities_or_numpys_error() {
    let be = backend();
    let e = ArrayD::<f64>::zeros(IxDyn(&[0]));
    let k = be
        .compile(&reduce_kernel(&VALUE_OPS[..2], DType::F64))
        .unwrap();
    let r = be.run_many(&k, &[(&e).into()], &[0], &[0]).unwrap();
    assert_eq!(
        (r[0].scalar_f64(), r[1].scalar_f64()),
        (Some(0.0), Some(1.0))
    );
    let kb = be
        .compile(&reduce_kernel(&VALUE_OPS[4..], DType::F64))
        .unwrap();
    let r = be.run_many(&kb, &[(&e).into()], &[0], &[0]).unwrap();
    assert_eq!(
        (r[0].scalar_f64(), r[1].scalar_f64()),
        (Some(0.0), Some(1.0))
    );
    let km = be
        .compile(&reduce_kernel(&[ReduceOp::Max], DType::F64))
        .unwrap();
    match be.run_many(&km, &[(&e).into()], &[0], &[0]) {
        Err(e @ Error::EmptyReduction { .. }) => {
            assert_eq!(e, Error::EmptyReduction { op: "max".into() });
            assert_eq!(
                e.to_string(),
                "value error: zero-size array to reduction operation maximum which has no identity"
            );
        }
        other => panic!("expected the empty-max error, got {:?}", other.map(|_| ())),
    }
    // (3, 0) along axis 0: nothing to reduce and nothing kept, an empty result; along axis 1:
    // three empty reductions, an error for max and zeros for sum.
    let e2 = ArrayD::<f64>::zeros(IxDyn(&[3, 0]));
    let r = be.run_many(&km, &[(&e2).into()], &[3, 0], &[0]).unwrap();
    assert_eq!(r[0].shape(), &[0]);
    assert!(be.run_many(&km, &[(&e2).into()], &[3, 0], &[1]).is_err());
    let r = be.run_many(&k, &[(&e2).into()], &[3, 0], &[1]).unwrap();
    assert_eq!(
        r[0].clone().into_f64().unwrap().into_raw_vec_and_offset().0,
        vec![0.0; 3]
    );
    // No reduced axes: every element reduced alone.
    let x = ndarray::arr1(&[1.5, -2.0]).into_dyn();
    let r = be.run_many(&k, &[(&x).into()], &[2], &[]).unwrap();
    assert_eq!(
        r[0].clone().into_f64().unwrap().into_raw_vec_and_offset().0,
        vec![1.5, -2.0]
    );
}

#[test]
fn one_multi_output_kernel_equals_separate_kernels() {
    let be = CpuBackend::new(3).unwrap();
    let n = 200_003;
    let x = Array1::from_shape_fn(n, |i| ((i as f64) * 0.61).sin() * 1e3);
    let ops = [ReduceOp::Min, ReduceOp::Max, ReduceOp::Sum];
    let k3 = be.compile(&reduce_kernel(&ops, DType::F64)).unwrap();
    assert!(k3.has_simd());
    for v in [x.view(), x.slice(s![..;-1])] {
        let all = be.run_many(&k3, &[v.into()], &[n], &[0]).unwrap();
        for (o, op) in ops.iter().enumerate() {
            let k1 = be.compile(&reduce_kernel(&[*op], DType::F64)).unwrap();
            let one = be.run(&k1, &[v.into()], &[n]).unwrap();
            assert_eq!(
                all[o].scalar_f64().unwrap().to_bits(),
                one.scalar_f64().unwrap().to_bits(),
                "{op}"
            );
        }
        let exact_max = v.iter().cloned().fold(f64::MIN, f64::max);
        assert_eq!(all[1].scalar_f64(), Some(exact_max));
    }
    // Two stores of different dtypes in one kernel, SIMD and strided.
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F64);
    let xv = b.push(Inst::Load { input: i }, DType::F64);
    let two = b.push(Inst::Const(Const::F64(2.0)), DType::F64);
    let m = b.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: xv,
            rhs: two,
        },
        DType::F64,
    );
    let gt = b.push(
        Inst::Binary {
            op: BinaryOp::Gt,
            lhs: xv,
            rhs: two,
        },
        DType::Bool,
    );
    let k = b.finish_many(vec![
        Output::Store { value: m },
        Output::Store { value: gt },
    ]);
    let w = b_mul_store_kernel();
    for (kernel, name) in [(k, "mul, gt"), (w, "mul, sub")] {
        for v in [x.view(), x.slice(s![..;-2])] {
            let len = v.len();
            diff_run(&be, name, &kernel, &[v.into()], &[len], &[]);
        }
        let x2 = Array2::from_shape_fn((40, 31), |(i, j)| (i * 31 + j) as f64 * 0.5);
        diff_run(&be, name, &kernel, &[x2.t().into()], &[31, 40], &[]);
    }
}

/// Two f64 stores (SIMD-able): `x * 2`, `x - 1`.
fn b_mul_store_kernel() -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F64);
    let xv = b.push(Inst::Load { input: i }, DType::F64);
    let two = b.push(Inst::Const(Const::F64(2.0)), DType::F64);
    let one = b.push(Inst::Const(Const::F64(1.0)), DType::F64);
    let m = b.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: xv,
            rhs: two,
        },
        DType::F64,
    );
    let d = b.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: xv,
            rhs: one,
        },
        DType::F64,
    );
    b.finish_many(vec![Output::Store { value: m }, Output::Store { value: d }])
}

#[test]
fn reductions_along_axes_do_not_depend_on_the_thread_count() {
    let backends: Vec<CpuBackend> = [1, 2, 4]
        .iter()
        .map(|&t| CpuBackend::new(t).unwrap())
        .collect();
    let x = Array2::from_shape_fn((4500, 1100), |(i, j)| ((i * 1100 + j) as f64 * 0.37).sin());
    let x3 = Array1::from_shape_fn(3 * 400_000, |i| (i as f64 * 0.11).cos() + 0.3)
        .into_shape_with_order((3, 400_000))
        .unwrap();
    let ops = [
        ReduceOp::Sum,
        ReduceOp::Min,
        ReduceOp::ArgMax,
        ReduceOp::Prod,
    ];
    for dt in [DType::F64, DType::F32] {
        let k = reduce_kernel(&ops, dt);
        let cases: Vec<(DynArray, Vec<usize>)> = vec![
            (x.clone().into_dyn().into(), vec![4500, 1100]),
            (x3.clone().into_dyn().into(), vec![3, 400_000]),
        ];
        for (a, shape) in &cases {
            let a = if dt == DType::F32 {
                DynArray::from(a.clone().into_f64().unwrap().mapv(|v| v as f32))
            } else {
                a.clone()
            };
            for axes in [vec![0], vec![1], vec![0, 1]] {
                let mut first: Option<Vec<DynArray>> = None;
                for be in &backends {
                    let ck = be.compile(&k).unwrap();
                    let v = nd_view(&a, NdLayout::Contiguous);
                    let r = be.run_many(&ck, &[v], shape, &axes).unwrap();
                    match &first {
                        None => first = Some(r),
                        Some(f) => assert!(
                            f == &r,
                            "{dt} {shape:?} axes {axes:?}: {} threads differ",
                            be.threads()
                        ),
                    }
                }
            }
        }
    }
}

#[test]
fn float32_sum_along_each_axis_is_accurate() {
    // Sums of f32 accumulate in f64: a (2000, 3000) array summed along either axis is within
    // 1e-6 relative of the f64 sum, each position.
    let be = CpuBackend::new(2).unwrap();
    let x = Array2::from_shape_fn((2000, 3000), |(i, j)| {
        0.1f32 + ((i * 7 + j * 13) % 1000) as f32 * 1e-4
    });
    let k = be.compile(&sum_kernel(DType::F32)).unwrap();
    for axis in [0usize, 1] {
        let got = be
            .run_many(&k, &[(&x).into()], &[2000, 3000], &[axis])
            .unwrap();
        let got = got[0].clone().into_f32().unwrap();
        let exact = x.mapv(|v| v as f64).sum_axis(ndarray::Axis(axis));
        for (g, e) in got.iter().zip(exact.iter()) {
            assert!(
                ((*g as f64) - e).abs() <= 1e-6 * e.abs(),
                "axis {axis}: {g} vs {e}"
            );
        }
    }
}

#[test]
#[ignore = "allocates 400 MB; run once in release: cargo test --release --lib float32_sum_of_1e8 -- --ignored"]
fn float32_sum_of_1e8_is_within_1e6_relative() {
    let be = CpuBackend::new(0).unwrap();
    let n = 100_000_000;
    let x = Array1::from_shape_fn(n, |i| 0.1f32 + (i % 1000) as f32 * 1e-4 + (i % 7) as f32);
    let k = be.compile(&sum_kernel(DType::F32)).unwrap();
    let got = be
        .run(&k, &[(&x).into()], &[n])
        .unwrap()
        .scalar_f64()
        .unwrap();
    let exact: f64 = x.iter().map(|v| *v as f64).sum();
    assert!((got - exact).abs() <= 1e-6 * exact, "{got} vs {exact}");
}

#[test]
fn session_reductions_with_axes_match_ndarray() {
    use crate::expr::Expr;
    use crate::ops::Reduction;
    let s = crate::session::Session::new();
    let (m, n) = (37, 1900);
    let x = Array2::from_shape_fn((m, n), |(i, j)| ((i * n + j) as f64 * 0.013).sin());
    let e = Expr::data(x.clone().into_dyn(), Some("x"));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let stat = |r: Reduction, v: &[f64]| -> f64 {
        match r {
            Reduction::Op(ReduceOp::Sum) => v.iter().sum(),
            Reduction::Op(ReduceOp::Max) => v.iter().cloned().fold(f64::MIN, f64::max),
            Reduction::Op(ReduceOp::ArgMin) => {
                let mut best = 0;
                for (i, x) in v.iter().enumerate() {
                    if *x < v[best] {
                        best = i;
                    }
                }
                best as f64
            }
            Reduction::Mean => mean(v),
            _ => {
                let mu = mean(v);
                (v.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / v.len() as f64).sqrt()
            }
        }
    };
    let reductions = [
        Reduction::Op(ReduceOp::Sum),
        Reduction::Op(ReduceOp::Max),
        Reduction::Op(ReduceOp::ArgMin),
        Reduction::Mean,
        Reduction::Std { ddof: 0 },
    ];
    let mut exprs = Vec::new();
    let mut want: Vec<Vec<f64>> = Vec::new();
    for r in reductions {
        for axes in [None, Some(&[0isize][..]), Some(&[1isize][..])] {
            exprs.push(e.reduce(r, axes, false));
            want.push(match axes {
                None => vec![stat(r, &x.iter().cloned().collect::<Vec<_>>())],
                Some(a) => x
                    .lanes(ndarray::Axis(a[0] as usize))
                    .into_iter()
                    .map(|l| stat(r, &l.to_vec()))
                    .collect(),
            });
        }
    }
    let got = s.compute_many(&exprs).unwrap();
    for ((ex, g), w) in exprs.iter().zip(&got).zip(&want) {
        let g = values(g);
        assert_eq!(g.len(), w.len());
        for (a, b) in g.iter().zip(w) {
            let a = a.as_f64();
            assert!(
                (a - b).abs() <= 1e-10 * b.abs().max(1.0),
                "{ex:?}: {a} vs {b}"
            );
        }
    }
}

/// Reduction timings for the report (run in release with `--ignored --nocapture`): medians of
/// interleaved rounds; asserts only that the variants agree.
#[test]
#[ignore]
fn reduction_throughput_report() {
    use std::time::Instant;
    let be = CpuBackend::new(0).unwrap();
    println!("threads: {}", be.threads());
    // The sumsq row of BENCHMARKS.md through the session, as `fusebox bench` prints it.
    let cfg = crate::bench::Config {
        cases: vec!["sumsq".into()],
        sizes: vec![10_000_000, 100_000_000],
        impls: vec!["fused".into(), "copy".into()],
        budget: std::time::Duration::from_millis(4000),
        ..Default::default()
    };
    print!("{}", crate::bench::table(&crate::bench::run(&cfg).unwrap()));
    /// Median seconds of each closure over `rounds` interleaved rounds.
    fn medians(rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
        let mut t = vec![Vec::new(); fs.len()];
        for _ in 0..rounds {
            for (i, f) in fs.iter_mut().enumerate() {
                let s = Instant::now();
                f();
                t[i].push(s.elapsed().as_secs_f64());
            }
        }
        t.into_iter()
            .map(|mut v| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            })
            .collect()
    }
    let copy = {
        let mut b = KernelBuilder::new();
        let i = b.input(DType::F64);
        let x = b.push(Inst::Load { input: i }, DType::F64);
        be.compile(&b.finish(Output::Store { value: x })).unwrap()
    };
    let sumsq = {
        let mut b = KernelBuilder::new();
        let i = b.input(DType::F64);
        let x = b.push(Inst::Load { input: i }, DType::F64);
        let sq = b.push(
            Inst::Binary {
                op: BinaryOp::Mul,
                lhs: x,
                rhs: x,
            },
            DType::F64,
        );
        be.compile(&b.finish(Output::Reduce {
            op: ReduceOp::Sum,
            value: sq,
        }))
        .unwrap()
    };
    let ops = [ReduceOp::Min, ReduceOp::Max, ReduceOp::Sum];
    let three = be.compile(&reduce_kernel(&ops, DType::F64)).unwrap();
    let ones: Vec<_> = ops
        .iter()
        .map(|op| be.compile(&reduce_kernel(&[*op], DType::F64)).unwrap())
        .collect();
    for n in [10_000_000usize, 100_000_000] {
        let x = Array1::from_shape_fn(n, |i| ((i % 1000) as f64 - 500.0) * 1e-3);
        let v: ArgView<'_> = (&x).into();
        let rounds = if n > 50_000_000 { 7 } else { 21 };
        let t = medians(
            rounds,
            &mut [
                &mut || drop(be.run(&copy, std::slice::from_ref(&v), &[n]).unwrap()),
                &mut || drop(be.run(&sumsq, std::slice::from_ref(&v), &[n]).unwrap()),
                &mut || {
                    drop(
                        be.run_many(&three, std::slice::from_ref(&v), &[n], &[0])
                            .unwrap(),
                    )
                },
                &mut || {
                    for k in &ones {
                        drop(be.run(k, std::slice::from_ref(&v), &[n]).unwrap());
                    }
                },
            ],
        );
        let gb = |bytes: f64, s: f64| bytes / s / 1e9;
        let b = 8.0 * n as f64;
        println!("n = {n:e} f64");
        println!(
            "  copy (16n bytes)            {:8.2} ms  {:5.1} GB/s",
            t[0] * 1e3,
            gb(2.0 * b, t[0])
        );
        println!(
            "  sum(x*x) (8n)               {:8.2} ms  {:5.1} GB/s  ({:.2}x copy time)",
            t[1] * 1e3,
            gb(b, t[1]),
            t[1] / t[0]
        );
        println!(
            "  min,max,sum one kernel (8n) {:8.2} ms  {:5.1} GB/s",
            t[2] * 1e3,
            gb(b, t[2])
        );
        println!(
            "  min,max,sum three kernels   {:8.2} ms  ({:.2}x the fused one)",
            t[3] * 1e3,
            t[3] / t[2]
        );
    }
    // (10000, 1000) f64 along each axis, against a copy of it and ndarray's sum_axis.
    let (m, n) = (10_000, 1_000);
    let a = Array2::from_shape_fn((m, n), |(i, j)| ((i * 7 + j * 3) % 1000) as f64 * 1e-3);
    let v: ArgView<'_> = (&a).into();
    let sum = be
        .compile(&reduce_kernel(&[ReduceOp::Sum], DType::F64))
        .unwrap();
    let max = be
        .compile(&reduce_kernel(&[ReduceOp::Max], DType::F64))
        .unwrap();
    let amax = be
        .compile(&reduce_kernel(&[ReduceOp::ArgMax], DType::F64))
        .unwrap();
    let vs = std::slice::from_ref(&v);
    let t = medians(
        21,
        &mut [
            &mut || drop(be.run(&copy, vs, &[m, n]).unwrap()),
            &mut || drop(be.run_many(&sum, vs, &[m, n], &[0, 1]).unwrap()),
            &mut || drop(be.run_many(&sum, vs, &[m, n], &[0]).unwrap()),
            &mut || drop(be.run_many(&sum, vs, &[m, n], &[1]).unwrap()),
            &mut || drop(be.run_many(&max, vs, &[m, n], &[0]).unwrap()),
            &mut || drop(be.run_many(&max, vs, &[m, n], &[1]).unwrap()),
            &mut || drop(be.run_many(&amax, vs, &[m, n], &[0]).unwrap()),
            &mut || drop(be.run_many(&amax, vs, &[m, n], &[1]).unwrap()),
            &mut || drop(a.sum_axis(ndarray::Axis(0))),
            &mut || drop(a.sum_axis(ndarray::Axis(1))),
        ],
    );
    let names = [
        "copy",
        "sum all",
        "sum axis 0",
        "sum axis 1",
        "max axis 0",
        "max axis 1",
        "argmax axis 0",
        "argmax axis 1",
        "ndarray sum_axis(0)",
        "ndarray sum_axis(1)",
    ];
    println!("(10000, 1000) f64:");
    for (name, s) in names.iter().zip(&t) {
        println!(
            "  {name:22} {:8.3} ms  {:5.1} GB/s (of the input)",
            s * 1e3,
            8e7 / s / 1e9
        );
    }
    let r0 = be.run_many(&sum, vs, &[m, n], &[0]).unwrap();
    let e0 = a.sum_axis(ndarray::Axis(0));
    for (g, e) in values(&r0[0]).iter().zip(e0.iter()) {
        assert!((g.as_f64() - e).abs() <= 1e-9 * e.abs().max(1.0));
    }
}

/// The sumsq rows of BENCHMARKS.md only (release, `--ignored --nocapture`), to compare with
/// `fusebox bench --case sumsq --impl fused,copy` of another build on the same machine.
#[test]
#[ignore]
fn sumsq_bench_report() {
    let cfg = crate::bench::Config {
        cases: vec!["sumsq".into()],
        sizes: vec![10_000_000, 100_000_000],
        impls: vec!["fused".into(), "copy".into()],
        budget: std::time::Duration::from_millis(4000),
        ..Default::default()
    };
    print!("{}", crate::bench::table(&crate::bench::run(&cfg).unwrap()));
}

#[test]
fn two_input_reductions_with_broadcast_and_transposed_operands() {
    // max(|a - b|), sum(a * b), argmin(a - b) with `b` a broadcast row and `a` transposed.
    let be = CpuBackend::new(3).unwrap();
    let mut kb = KernelBuilder::new();
    let (ia, ib) = (kb.input(DType::F64), kb.input(DType::F64));
    let a = kb.push(Inst::Load { input: ia }, DType::F64);
    let b = kb.push(Inst::Load { input: ib }, DType::F64);
    let d = kb.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: a,
            rhs: b,
        },
        DType::F64,
    );
    let ad = kb.push(
        Inst::Unary {
            op: UnaryOp::Abs,
            arg: d,
        },
        DType::F64,
    );
    let p = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: a,
            rhs: b,
        },
        DType::F64,
    );
    let k = kb.finish_many(vec![
        Output::Reduce {
            op: ReduceOp::Max,
            value: ad,
        },
        Output::Reduce {
            op: ReduceOp::Sum,
            value: p,
        },
        Output::Reduce {
            op: ReduceOp::ArgMin,
            value: d,
        },
    ]);
    for (m, n) in [(9, 13), (400, 300), (3000, 7)] {
        let at = Array2::from_shape_fn((n, m), |(j, i)| ((i * 31 + j * 17) % 23) as f64 - 11.0);
        let row = Array1::from_shape_fn(n, |j| (j % 5) as f64 * 0.5);
        for axes in axis_sets(2) {
            let what = format!("({m}, {n}) axes {axes:?}");
            diff_run(
                &be,
                &what,
                &k,
                &[at.t().into_dyn().into(), (&row).into()],
                &[m, n],
                &axes,
            );
        }
    }
}

mod vertical;
