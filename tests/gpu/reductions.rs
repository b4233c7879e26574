//! Reductions: every op, dtype, axis set and layout against the IR interpreter.
use super::regressions::float_vals;
use super::*;

// ---- reductions: every op, dtype, axis set and layout against the IR interpreter -----------

/// A kernel of one input of dtype `t` reducing it with each of `ops` (cast to the accumulator
/// dtype where the op needs it): a multi-output kernel when `ops` has several.
pub(super) fn reduce_kernel(t: DType, ops: &[ReduceOp]) -> Kernel {
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let mut outs = Vec::new();
    for &op in ops {
        let acc = op.signature(t).unwrap().0;
        let value = if acc == t {
            x
        } else {
            kb.push(Inst::Cast { arg: x }, acc)
        };
        outs.push(Output::Reduce { op, value });
    }
    kb.finish_many(outs)
}

/// Values with many ties, both zeros, rare infinities and NaNs (so some rows have a NaN and
/// others not), and products that stay finite: mostly +-1, now and then 2, 0.5, 0, 3, extremes.
pub(super) fn tie_values(t: DType, n: usize, seed: u64) -> Vec<V> {
    let mut r = Lcg(seed);
    (0..n)
        .map(|_| {
            let u = r.next() % 1000;
            let s = if r.next() & 1 == 1 { -1.0 } else { 1.0 };
            match t {
                DType::Bool => V::B(u < 500),
                DType::I32 | DType::I64 => V::I(match u {
                    0 => i32::MIN as i64,
                    1 => i32::MAX as i64,
                    2..=9 => 0,
                    10..=20 => s as i64 * 3,
                    _ => s as i64 * (1 + (u % 2) as i64),
                }),
                _ => V::F(match u {
                    0 => f64::NAN,
                    1 => s * f64::INFINITY,
                    2..=9 => s * 0.0,
                    10 => s * 2.0,
                    11 => s * 0.5,
                    12..=40 => s * 0.75,
                    _ => s,
                }),
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Lay {
    Contiguous,
    Transposed,
    Reversed,
    /// The input has size 1 along axis 0, broadcast to the iteration space.
    Broadcast,
}

/// An input of dtype `t` for the iteration space `shape`, laid out as `lay`.
fn laid_out(t: DType, shape: &[usize], lay: Lay, seed: u64) -> DynArray {
    let mut phys: Vec<usize> = shape.to_vec();
    match lay {
        Lay::Transposed => phys.reverse(),
        Lay::Broadcast if !phys.is_empty() => phys[0] = 1,
        _ => {}
    }
    let n: usize = phys.iter().product();
    let a = array(t, &tie_values(t, n, seed), &phys);
    macro_rules! re {
        ($x:expr) => {{
            let mut x = $x;
            match lay {
                Lay::Transposed => x = x.reversed_axes(),
                Lay::Reversed => {
                    for d in 0..x.ndim() {
                        x.invert_axis(ndarray::Axis(d));
                    }
                }
                _ => {}
            }
            DynArray::from(x)
        }};
    }
    match a {
        DynArray::Bool(x) => re!(x),
        DynArray::I32(x) => re!(x),
        DynArray::I64(x) => re!(x),
        DynArray::F32(x) => re!(x),
        DynArray::F64(x) => re!(x),
        _ => unreachable!(
            "the GPU backend runs bool, int32, int64, float32, float64 only (`supported`)"
        ),
    }
}

/// GPU result vs interpreter result of one output: exact (any NaN matching any NaN, zeros
/// by sign) except float sums and products, which match to `tol` relative.
pub(super) fn check_reduced(got: &DynArray, want: &DynArray, op: ReduceOp, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let inexact = matches!(op, ReduceOp::Sum | ReduceOp::Prod) && want.dtype().is_float();
    let tol = if want.dtype() == DType::F32 {
        1e-5
    } else {
        1e-12
    };
    for (i, (g, w)) in values(got).into_iter().zip(values(want)).enumerate() {
        let ok = match (g, w) {
            (V::F(g), V::F(w)) if w.is_nan() => g.is_nan(),
            (V::F(g), V::F(w)) if inexact && w.is_finite() => {
                (g - w).abs() <= tol * w.abs().max(1.0)
            }
            (V::F(g), V::F(w)) => g.to_bits() == w.to_bits(),
            (V::I(g), V::I(w)) => g == w,
            (V::B(g), V::B(w)) => g == w,
            _ => false,
        };
        assert!(ok, "{what}: element {i}: GPU {g:?}, interpreter {w:?}");
    }
}

/// Run `k` on the GPU (host and device-resident paths) and in the interpreter; compare.
pub(super) fn check_against_interp(
    b: &GpuBackend,
    gk: &fusebox::unstable::gpu::GpuKernel,
    inputs: &[DynArray],
    shape: &[usize],
    axes: &[usize],
    resident: bool,
    what: &str,
) {
    let k = gk.kernel();
    let views: Vec<ArgView<'_>> = inputs.iter().map(|a| a.view()).collect();
    let want = fusebox::unstable::interp::run_many(k, &views, shape, axes);
    let got = b.run_many(gk, &views, shape, axes);
    let (want, got) = match (want, got) {
        (Ok(w), Ok(g)) => (w, g),
        (Err(w), Err(g)) => {
            assert_eq!(
                std::mem::discriminant(&w),
                std::mem::discriminant(&g),
                "{what}: interpreter {w}, GPU {g}"
            );
            return;
        }
        (w, g) => panic!("{what}: interpreter {w:?}, GPU {g:?}"),
    };
    assert_eq!(got.len(), k.outputs.len(), "{what}");
    let op_of = |o: &Output| match *o {
        Output::Reduce { op, .. } => op,
        Output::Store { .. } => ReduceOp::Min, // compared exactly
    };
    for (o, (g, w)) in got.iter().zip(&want).enumerate() {
        check_reduced(g, w, op_of(&k.outputs[o]), &format!("{what}, output {o}"));
    }
    if resident {
        let dev: Vec<_> = views.iter().map(|v| b.upload(v).unwrap()).collect();
        let refs: Vec<_> = dev.iter().collect();
        let outs = b
            .run_resident_many(gk, &refs, shape, axes)
            .unwrap_or_else(|e| panic!("{what}, resident: {e}"));
        for (o, (g, w)) in outs.iter().zip(&want).enumerate() {
            let g = b.download(g).unwrap();
            check_reduced(
                &g,
                w,
                op_of(&k.outputs[o]),
                &format!("{what}, resident, output {o}"),
            );
        }
    }
}

/// Every subset of at most two axes (the empty one too: each output element reduces one
/// value), and all axes.
fn axis_sets(ndim: usize) -> Vec<Vec<usize>> {
    let mut v: Vec<Vec<usize>> = vec![(0..ndim).collect(), vec![]];
    for a in 0..ndim {
        v.push(vec![a]);
        for c in a + 1..ndim {
            v.push(vec![a, c]);
        }
    }
    v.sort();
    v.dedup();
    v
}

#[test]
fn every_reduction_dtype_axis_and_layout_matches_the_interpreter() {
    let Some(b) = backend() else { return };
    let shapes: &[&[usize]] = &[
        &[],
        &[1],
        &[7],
        &[3, 5, 7],
        &[2, 1, 9],
        &[5, 300, 3],
        &[70, 3, 130],
        &[1, 1, 1],
        &[0, 4, 3],
    ];
    for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        let k = reduce_kernel(t, &ReduceOp::ALL);
        let gk = b.compile(&k).unwrap_or_else(|e| panic!("{t}: {e}"));
        let mut seed = 1;
        for &shape in shapes {
            for axes in axis_sets(shape.len()) {
                for lay in [
                    Lay::Contiguous,
                    Lay::Transposed,
                    Lay::Reversed,
                    Lay::Broadcast,
                ] {
                    seed += 1;
                    let x = laid_out(t, shape, lay, seed);
                    // The resident path shares the shader; check it on part of the cases.
                    let resident = matches!(lay, Lay::Contiguous | Lay::Broadcast);
                    let what = format!("{t} {shape:?} axes {axes:?} {lay:?}");
                    check_against_interp(b, &gk, &[x], shape, &axes, resident, &what);
                }
            }
        }
    }
}

#[test]
fn reductions_over_many_workgroups_and_combine_passes() {
    let Some(b) = backend() else { return };
    // Full reductions beyond one workgroup (2048 values) and beyond one combine pass; rows and
    // columns of a matrix (reduced axis inner and outer); one op at a time too.
    let cases: &[(&[usize], &[usize])] = &[
        (&[2049], &[0]),
        (&[300_001], &[0]),
        (&[5_000_000], &[0]),
        (&[3001, 37], &[0]),
        (&[37, 3001], &[1]),
        (&[20_000, 3], &[0]),
        (&[3, 20_000], &[1]),
        (&[600, 700], &[0, 1]),
        (&[60, 50, 70], &[0, 2]),
    ];
    for t in [DType::F32, DType::I32, DType::Bool, DType::F64, DType::I64]
        .into_iter()
        .filter(|t| supported(b, *t))
    {
        let k = reduce_kernel(t, &ReduceOp::ALL);
        let gk = b.compile(&k).unwrap();
        for (i, &(shape, axes)) in cases.iter().enumerate() {
            let n: usize = shape.iter().product();
            // The largest case once per dtype group is enough (it is slow in the interpreter).
            if n > 1_000_000 && t != DType::F32 {
                continue;
            }
            let x = laid_out(t, shape, Lay::Contiguous, 100 + i as u64);
            let what = format!("{t} {shape:?} axes {axes:?}");
            check_against_interp(b, &gk, &[x], shape, axes, n < 1_000_000, &what);
        }
    }
    for op in ReduceOp::ALL {
        let k = reduce_kernel(DType::F32, &[op]);
        let gk = b.compile(&k).unwrap();
        for (shape, axes) in [
            (&[40_000usize][..], &[0usize][..]),
            (&[300, 70], &[0]),
            (&[70, 300], &[1]),
        ] {
            let x = laid_out(DType::F32, shape, Lay::Reversed, 7);
            let what = format!("{op} alone, {shape:?} axes {axes:?}");
            check_against_interp(b, &gk, &[x], shape, axes, true, &what);
        }
    }
}

#[test]
fn nan_zero_and_tie_positions() {
    let Some(b) = backend() else { return };
    for t in [DType::F32, DType::F64]
        .into_iter()
        .filter(|t| supported(b, *t))
    {
        let gk = b.compile(&reduce_kernel(t, &ReduceOp::ALL)).unwrap();
        let n = 5000;
        let cases: Vec<(Vec<f64>, &str)> = vec![
            // Both zeros everywhere: min/max give the last zero, arg* the first.
            (
                (0..n)
                    .map(|i| if i % 3 == 0 { -0.0 } else { 0.0 })
                    .collect(),
                "zeros",
            ),
            (
                (0..n)
                    .map(|i| if i == n - 1 { -0.0 } else { 0.0 })
                    .collect(),
                "last -0",
            ),
            // NaNs late and early: the first wins (value and position). (Products stay clear
            // of overflow next to a zero: the tree's order would give inf * 0.)
            (
                (0..n)
                    .map(|i| {
                        if i == 4000 || i == 4500 {
                            f64::NAN
                        } else {
                            i as f64 * 1e-3
                        }
                    })
                    .collect(),
                "late NaNs",
            ),
            (
                (0..n)
                    .map(|i| if i == 1 { f64::NAN } else { -(i as f64) * 1e-3 })
                    .collect(),
                "early NaN",
            ),
            (
                (0..n)
                    .map(|i| if i % 7 == 0 { f64::INFINITY } else { 1.0 })
                    .collect(),
                "inf ties",
            ),
        ];
        for (xs, name) in cases {
            let vals: Vec<V> = xs.iter().map(|&x| V::F(x)).collect();
            let x = array(t, &vals, &[n]);
            check_against_interp(
                b,
                &gk,
                std::slice::from_ref(&x),
                &[n],
                &[0],
                true,
                &format!("{t} {name}"),
            );
            let x2 = x.reshaped(&[50, 100]).unwrap();
            for axes in [&[0usize][..], &[1]] {
                check_against_interp(
                    b,
                    &gk,
                    std::slice::from_ref(&x2),
                    &[50, 100],
                    axes,
                    false,
                    &format!("{t} {name} {axes:?}"),
                );
            }
        }
    }
}

#[test]
fn fused_multi_output_reductions_and_stores() {
    let Some(b) = backend() else { return };
    let t = DType::F32;
    // sum(x*y), max(|x-y|), argmin(x), any(x > y), mean-style sum of a cast, over a broadcast y.
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let y = load(&mut kb, t);
    let xy = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: x,
            rhs: y,
        },
        t,
    );
    let d = kb.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: x,
            rhs: y,
        },
        t,
    );
    let ad = kb.push(
        Inst::Unary {
            op: UnaryOp::Abs,
            arg: d,
        },
        t,
    );
    let gt = kb.push(
        Inst::Binary {
            op: BinaryOp::Gt,
            lhs: x,
            rhs: y,
        },
        DType::Bool,
    );
    let c = kb.push(Inst::Const(Const::F32(0.25)), t);
    let xc = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: x,
            rhs: c,
        },
        t,
    );
    let k = kb.finish_many(vec![
        Output::Reduce {
            op: ReduceOp::Sum,
            value: xy,
        },
        Output::Reduce {
            op: ReduceOp::Max,
            value: ad,
        },
        Output::Reduce {
            op: ReduceOp::ArgMin,
            value: x,
        },
        Output::Reduce {
            op: ReduceOp::Any,
            value: gt,
        },
        Output::Reduce {
            op: ReduceOp::Min,
            value: xc,
        },
    ]);
    let gk = b.compile(&k).unwrap();
    let shape = [300, 257];
    let xs = laid_out(t, &shape, Lay::Transposed, 5);
    let mut r = Lcg(9);
    let yv: Vec<V> = (0..257)
        .map(|_| V::F(round_to(t, r.range(-1.0, 1.0))))
        .collect();
    let ys = array(t, &yv, &[257]);
    for axes in axis_sets(2) {
        check_against_interp(
            b,
            &gk,
            &[xs.clone(), ys.clone()],
            &shape,
            &axes,
            true,
            &format!("fused {axes:?}"),
        );
    }
    // Stores: three outputs of different dtypes in one pass.
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let y = load(&mut kb, t);
    let s = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: x,
            rhs: y,
        },
        t,
    );
    let gt = kb.push(
        Inst::Binary {
            op: BinaryOp::Gt,
            lhs: x,
            rhs: y,
        },
        DType::Bool,
    );
    let ci = kb.push(Inst::Cast { arg: s }, DType::I32);
    let k = kb.finish_many(vec![
        Output::Store { value: s },
        Output::Store { value: gt },
        Output::Store { value: ci },
    ]);
    let gk = b.compile(&k).unwrap();
    check_against_interp(
        b,
        &gk,
        &[xs.clone(), ys.clone()],
        &shape,
        &[],
        true,
        "three stores",
    );
    // Stores with an empty space.
    let e = array(t, &[], &[0, 257]);
    check_against_interp(b, &gk, &[e, ys], &[0, 257], &[], true, "three empty stores");
}

#[test]
fn empty_reductions_give_identities_or_numpys_error() {
    let Some(b) = backend() else { return };
    for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        let with_id = b
            .compile(&reduce_kernel(
                t,
                &[ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Any, ReduceOp::All],
            ))
            .unwrap();
        let x = array(t, &[], &[0, 5]);
        for axes in [&[0usize][..], &[1], &[0, 1]] {
            check_against_interp(
                b,
                &with_id,
                std::slice::from_ref(&x),
                &[0, 5],
                axes,
                true,
                &format!("{t} identities {axes:?}"),
            );
        }
        for op in [
            ReduceOp::Min,
            ReduceOp::Max,
            ReduceOp::ArgMin,
            ReduceOp::ArgMax,
        ] {
            let gk = b.compile(&reduce_kernel(t, &[op])).unwrap();
            let views = [x.view()];
            match b.run_many(&gk, &views, &[0, 5], &[0]) {
                Err(fusebox::Error::EmptyReduction { op: o }) => assert_eq!(o, op.name()),
                other => panic!("{op} of an empty axis: {other:?}"),
            }
            let d = b.upload(&views[0]).unwrap();
            assert!(matches!(
                b.run_resident_many(&gk, &[&d], &[0, 5], &[0]),
                Err(fusebox::Error::EmptyReduction { op: o }) if o == op.name()
            ));
            // Nothing to reduce into: an empty result, no error.
            let got = b.run_many(&gk, &views, &[0, 5], &[1]).unwrap();
            assert_eq!(got[0].shape(), &[0]);
        }
    }
}

#[test]
fn streamed_full_reductions_equal_one_pass() {
    // A backend of its own: the small binding limit must not leak into concurrent tests.
    if backend().is_none() {
        return;
    }
    let b = GpuBackend::new(0).unwrap();
    let t = DType::F32;
    let k = reduce_kernel(t, &ReduceOp::ALL);
    let gk = b.compile(&k).unwrap();
    let shape = [37, 301];
    let x = laid_out(t, &shape, Lay::Contiguous, 3);
    let views = [x.view()];
    let axes = [0, 1];
    let one = b.run_many(&gk, &views, &shape, &axes).unwrap();
    let d0 = b.counters().dispatches;
    b.set_binding_limit(Some(4096));
    let streamed = b.run_many(&gk, &views, &shape, &axes).unwrap();
    assert!(b.counters().dispatches - d0 >= 4, "the run was not chunked");
    let want = fusebox::unstable::interp::run_many(&k, &views, &shape, &axes).unwrap();
    for (o, op) in ReduceOp::ALL.iter().enumerate() {
        check_reduced(&streamed[o], &want[o], *op, &format!("streamed {op}"));
        check_reduced(
            &streamed[o],
            &one[o],
            *op,
            &format!("streamed vs one pass {op}"),
        );
    }
    // A broadcast input is gathered per chunk.
    let row = laid_out(t, &[1, 301], Lay::Contiguous, 4);
    let k2 = binary_reduce(t);
    let g2 = b.compile(&k2).unwrap();
    let v2 = [x.view(), row.view()];
    let got = b.run_many(&g2, &v2, &shape, &axes).unwrap();
    let want = fusebox::unstable::interp::run_many(&k2, &v2, &shape, &axes).unwrap();
    check_reduced(&got[0], &want[0], ReduceOp::Max, "streamed x - row");
    // Along some axes only, a streamed input is refused with a typed error.
    assert!(matches!(
        b.run_many(&gk, &views, &shape, &[1]),
        Err(fusebox::Error::TooLarge { .. })
    ));
    b.set_binding_limit(None);
}

fn binary_reduce(t: DType) -> Kernel {
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let y = load(&mut kb, t);
    let d = kb.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: x,
            rhs: y,
        },
        t,
    );
    kb.finish(Output::Reduce {
        op: ReduceOp::Max,
        value: d,
    })
}

#[test]
fn f32_sum_of_1e8_is_within_1e_6_of_f64() {
    let Some(b) = backend() else { return };
    let n = 100_000_000usize;
    let mut r = Lcg(42);
    let xs: Vec<f32> = (0..n).map(|_| r.unit() as f32).collect();
    let want: f64 = xs.iter().map(|&v| v as f64).sum();
    let a = ArrayD::from_shape_vec(IxDyn(&[n]), xs).unwrap();
    let gk = b
        .compile(&reduce_kernel(DType::F32, &[ReduceOp::Sum]))
        .unwrap();
    let got = b
        .run(&gk, &[ArgView::from(a.view())], &[n])
        .unwrap()
        .scalar_f64()
        .unwrap();
    let rel = (got - want).abs() / want;
    assert!(rel <= 1e-6, "GPU {got}, f64 {want}: {rel:e} relative");
}

/// `Inst::Fallback` on the GPU: the call's result (its polyfill, within its bound) where the
/// condition holds, the value (exactly) elsewhere; the same for a binary call.
#[test]
fn fallback_instruction_computes_the_call_where_the_condition_holds() {
    use fusebox::unstable::kir::Call;
    let Some(g) = backend() else { return };
    for t in [DType::F32, DType::F64]
        .into_iter()
        .filter(|t| supported(g, *t))
    {
        for (call_name, binary) in [("sin", false), ("hypot", true)] {
            let mut b = KernelBuilder::new();
            let x = load(&mut b, t);
            let y = load(&mut b, t);
            let c = b.push(Inst::Const(sem::cast(Const::F64(100.0), t)), t);
            let cond = b.push(
                Inst::Binary {
                    op: BinaryOp::Gt,
                    lhs: x,
                    rhs: c,
                },
                DType::Bool,
            );
            let value = b.push(
                Inst::Binary {
                    op: BinaryOp::Mul,
                    lhs: x,
                    rhs: y,
                },
                t,
            );
            let call = if binary {
                Call::Binary(BinaryOp::Hypot, x, y)
            } else {
                Call::Unary(UnaryOp::Sin, x)
            };
            let f = b.push(Inst::Fallback { cond, value, call }, t);
            let k = b.finish(Output::Store { value: f });
            let xs: Vec<f64> = (0..300)
                .map(|n| (n % 7) as f64 * 40.0 + n as f64 * 0.1)
                .collect();
            let ys: Vec<f64> = (0..300).map(|n| n as f64 * 0.25 - 30.0).collect();
            let out = values(&run(
                g,
                &k,
                &[float_vals(t, &xs), float_vals(t, &ys)],
                &[xs.len()],
            ));
            for i in 0..xs.len() {
                let (xv, yv) = (round_to(t, xs[i]), round_to(t, ys[i]));
                let V::F(got) = out[i] else {
                    panic!("not a float")
                };
                if xv > 100.0 {
                    let want = match call {
                        Call::Unary(op, _) => oracle_unary(op, t, V::F(xv)),
                        Call::Binary(op, _, _) => oracle_binary(op, t, V::F(xv), V::F(yv)),
                    };
                    let V::F(want) = want else { panic!() };
                    let u = ulps(t, got, want);
                    assert!(
                        u <= bound(call_name, t),
                        "{call}: {got} vs {want} ({u} ULP)"
                    );
                } else {
                    let want = round_to(t, xv * yv);
                    assert!(same(V::F(got), V::F(want)), "value lane: {got} vs {want}");
                }
            }
        }
    }
}

/// `f(x < x) * x` is `0 * x`: NaN for an infinite or NaN `x`, -0.0 for -0.0 (found by the
/// random differential suite as `astype((x0 < x0) * x0, bool)` with `x0 = inf`). Two bugs:
/// Mesa rewrites a product with a bool-to-float cast into a select (`b2f(c) * x -> c ? x :
/// 0`), so the cast's result goes through the opaque identity; and that identity was an xor,
/// so the product's own barrier on its right operand cancelled it (`x * 0.0` was folded).
#[test]
fn bool_cast_times_inf_or_nan_is_nan() {
    let Some(g) = backend() else { return };
    let xs = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 2.5, -0.0];
    for t in [DType::F32, DType::F64] {
        if !supported(g, t) {
            continue;
        }
        for cmp in [BinaryOp::Lt, BinaryOp::Ne] {
            for cast_left in [true, false] {
                let mut b = KernelBuilder::new();
                let x = load(&mut b, t);
                let c = b.push(
                    Inst::Binary {
                        op: cmp,
                        lhs: x,
                        rhs: x,
                    },
                    DType::Bool,
                );
                let f = b.push(Inst::Cast { arg: c }, t);
                let (lhs, rhs) = if cast_left { (f, x) } else { (x, f) };
                let v = b.push(
                    Inst::Binary {
                        op: BinaryOp::Mul,
                        lhs,
                        rhs,
                    },
                    t,
                );
                let k = b.finish(Output::Store { value: v });

                let out = values(&run(g, &k, &[float_vals(t, &xs)], &[xs.len()]));
                for (i, &x) in xs.iter().enumerate() {
                    let x = round_to(t, x);
                    let c = match cmp {
                        BinaryOp::Lt => x < x,
                        _ => x != x,
                    };
                    let want = V::F(round_to(t, if c { 1.0 } else { 0.0 } * x));
                    assert!(
                        same(out[i], want),
                        "{t} f({x:?} {cmp} {x:?}) * {x:?}: got {:?}, want {want:?}",
                        out[i]
                    );
                }
            }
        }
    }
}
