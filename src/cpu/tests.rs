//! Differential tests: compiled kernels against the scalar definitions in `semantics.rs`,
//! element by element, bitwise (any NaN equals any NaN), on contiguous (SIMD), strided,
//! reversed, broadcast, 0-d and empty operands.
use super::*;
use crate::kir::{Const, Inst, KernelBuilder, Value as KV};
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::semantics as sem;
use ndarray::{s, Array1, Array2, ArrayD};

/// One element of any dtype.
#[derive(Debug, Clone, Copy)]
enum V {
    B(bool),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

impl V {
    /// Bitwise equality, with every NaN equal to every NaN.
    /// Equal, or floats at most `ulp` units in the last place apart (NaN matches NaN).
    fn within_ulp(self, o: V, ulp: u64) -> bool {
        use crate::semantics::{ulp_distance_f32, ulp_distance_f64};
        match (self, o) {
            (V::F32(a), V::F32(b)) if ulp > 0 && a.is_finite() && b.is_finite() => {
                ulp_distance_f32(a, b) <= ulp
            }
            (V::F64(a), V::F64(b)) if ulp > 0 && a.is_finite() && b.is_finite() => {
                ulp_distance_f64(a, b) <= ulp
            }
            _ => self.same_bits(o),
        }
    }
    fn same_bits(self, o: V) -> bool {
        match (self, o) {
            (V::B(a), V::B(b)) => a == b,
            (V::I32(a), V::I32(b)) => a == b,
            (V::I64(a), V::I64(b)) => a == b,
            (V::F32(a), V::F32(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            (V::F64(a), V::F64(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            _ => false,
        }
    }
    fn as_f64(self) -> f64 {
        match self {
            V::B(b) => b as u8 as f64,
            V::I32(v) => v as f64,
            V::I64(v) => v as f64,
            V::F32(v) => v as f64,
            V::F64(v) => v,
        }
    }
}

fn eval_unary(op: UnaryOp, x: V) -> V {
    match x {
        V::B(v) => V::B(sem::unary_bool(op, v)),
        V::I32(v) => V::I32(sem::unary_i32(op, v)),
        V::I64(v) => V::I64(sem::unary_i64(op, v)),
        V::F32(v) => V::F32(sem::unary_f32(op, v)),
        V::F64(v) => V::F64(sem::unary_f64(op, v)),
    }
}

fn eval_binary(op: BinaryOp, a: V, b: V) -> V {
    if op.is_comparison() {
        return V::B(match (a, b) {
            (V::B(x), V::B(y)) => sem::compare(op, x, y),
            (V::I32(x), V::I32(y)) => sem::compare(op, x, y),
            (V::I64(x), V::I64(y)) => sem::compare(op, x, y),
            (V::F32(x), V::F32(y)) => sem::compare(op, x, y),
            (V::F64(x), V::F64(y)) => sem::compare(op, x, y),
            _ => panic!("mixed operands"),
        });
    }
    match (a, b) {
        (V::B(x), V::B(y)) => V::B(sem::binary_bool(op, x, y)),
        (V::I32(x), V::I32(y)) => V::I32(sem::binary_i32(op, x, y)),
        (V::I64(x), V::I64(y)) => V::I64(sem::binary_i64(op, x, y)),
        (V::F32(x), V::F32(y)) => V::F32(sem::binary_f32(op, x, y)),
        (V::F64(x), V::F64(y)) => V::F64(sem::binary_f64(op, x, y)),
        _ => panic!("mixed operands"),
    }
}

/// NumPy `astype` (see the brief in semantics.rs / kir.rs).
fn eval_cast(x: V, to: DType) -> V {
    let f = x.as_f64();
    match to {
        DType::Bool => V::B(match x {
            V::B(b) => b,
            V::I32(v) => v != 0,
            V::I64(v) => v != 0,
            V::F32(v) => v != 0.0,
            V::F64(v) => v != 0.0,
        }),
        DType::I32 => V::I32(match x {
            V::B(b) => b as i32,
            V::I32(v) => v,
            V::I64(v) => v as i32,
            _ => sem::f64_to_i32(f),
        }),
        DType::I64 => V::I64(match x {
            V::B(b) => b as i64,
            V::I32(v) => v as i64,
            V::I64(v) => v,
            _ => sem::f64_to_i64(f),
        }),
        DType::F32 => V::F32(match x {
            V::B(b) => b as u8 as f32,
            V::I32(v) => v as f32,
            V::I64(v) => v as f32,
            V::F32(v) => v,
            V::F64(v) => v as f32,
        }),
        DType::F64 => V::F64(f),
    }
}

/// Edge values of each dtype.
fn edges(dt: DType) -> Vec<V> {
    let floats = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -2.5,
        3.0,
        -7.25,
        0.1,
        123456.789,
        1e300,
        -1e300,
        1e-310,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        9223372036854775808.0,
        -9223372036854775808.0,
        2147483648.0,
        -2147483648.5,
        2147483647.5,
        -2147483649.0,
        3e38,
        1e-40,
    ];
    match dt {
        DType::Bool => vec![V::B(false), V::B(true)],
        DType::I32 => [
            0,
            1,
            -1,
            2,
            -2,
            3,
            -3,
            7,
            -7,
            31,
            32,
            33,
            -33,
            100,
            12345,
            i32::MAX,
            i32::MIN,
            i32::MIN + 1,
        ]
        .into_iter()
        .map(V::I32)
        .collect(),
        DType::I64 => [
            0,
            1,
            -1,
            2,
            -2,
            3,
            -3,
            7,
            -7,
            31,
            32,
            63,
            64,
            65,
            -65,
            100,
            1 << 40,
            -(1 << 53) - 1,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ]
        .into_iter()
        .map(V::I64)
        .collect(),
        DType::F32 => floats
            .iter()
            .map(|x| V::F32(*x as f32))
            .chain([V::F32(f32::MAX), V::F32(-16777217.0)])
            .collect(),
        DType::F64 => floats.iter().map(|x| V::F64(*x)).collect(),
    }
}

fn to_array(vals: &[V], dt: DType, shape: &[usize]) -> DynArray {
    let shape = IxDyn(shape);
    macro_rules! mk {
        ($pat:ident, $t:ty) => {
            ArrayD::<$t>::from_shape_vec(
                shape,
                vals.iter()
                    .map(|v| match v {
                        V::$pat(x) => *x,
                        _ => panic!("dtype mismatch"),
                    })
                    .collect(),
            )
            .unwrap()
            .into()
        };
    }
    match dt {
        DType::Bool => mk!(B, bool),
        DType::I32 => mk!(I32, i32),
        DType::I64 => mk!(I64, i64),
        DType::F32 => mk!(F32, f32),
        DType::F64 => mk!(F64, f64),
    }
}

fn values(a: &DynArray) -> Vec<V> {
    match a {
        DynArray::Bool(x) => x.iter().map(|v| V::B(*v)).collect(),
        DynArray::I32(x) => x.iter().map(|v| V::I32(*v)).collect(),
        DynArray::I64(x) => x.iter().map(|v| V::I64(*v)).collect(),
        DynArray::F32(x) => x.iter().map(|v| V::F32(*v)).collect(),
        DynArray::F64(x) => x.iter().map(|v| V::F64(*v)).collect(),
    }
}

fn check_same(what: &str, got: &DynArray, expected: &[V], inputs: &[Vec<V>]) {
    check_within(what, got, expected, inputs, 0)
}

fn check_within(what: &str, got: &DynArray, expected: &[V], inputs: &[Vec<V>], ulp: u64) {
    let got_v = values(got);
    assert_eq!(got_v.len(), expected.len(), "{what}: length");
    for (i, (g, e)) in got_v.iter().zip(expected).enumerate() {
        let args: Vec<String> = inputs.iter().map(|x| format!("{:?}", x.get(i))).collect();
        assert!(
            g.within_ulp(*e, ulp),
            "{what}: element {i} (inputs {}): got {g:?}, expected {e:?} (tolerance {ulp} ULP)",
            args.join(", ")
        );
    }
}

/// The documented bound of a function the JIT's math expansion replaces (0: bit-exact libm
/// call, for the functions the JIT leaves to libm).
fn ulp_bound(op: UnaryOp, dt: DType) -> u64 {
    if !crate::mathlib::expands(op, dt) {
        return 0;
    }
    crate::mathlib::ULP_BOUNDS
        .iter()
        .find(|b| b.0 == op && b.1 == dt)
        .map_or(0, |b| b.2)
}

/// [`ulp_bound`] for the binary functions.
fn binary_ulp_bound(op: BinaryOp, dt: DType) -> u64 {
    if !crate::mathlib::expands_binary(op, dt) {
        return 0;
    }
    crate::mathlib::BINARY_ULP_BOUNDS
        .iter()
        .find(|b| b.0 == op && b.1 == dt)
        .map_or(0, |b| b.2)
}

/// The layouts each test runs its operands in. All produce the same logical 1-D values.
#[derive(Debug, Clone, Copy)]
enum Layout {
    Contiguous,
    Step2,
    Reversed,
}
const LAYOUTS: [Layout; 3] = [Layout::Contiguous, Layout::Step2, Layout::Reversed];

/// Owned storage whose view (per `layout`) shows `vals` in order.
fn storage(vals: &[V], dt: DType, layout: Layout) -> DynArray {
    match layout {
        Layout::Contiguous => to_array(vals, dt, &[vals.len()]),
        Layout::Step2 => {
            let mut v = Vec::new();
            for x in vals {
                v.push(*x);
                v.push(*x);
            }
            to_array(&v, dt, &[v.len()])
        }
        Layout::Reversed => {
            let v: Vec<V> = vals.iter().rev().copied().collect();
            to_array(&v, dt, &[v.len()])
        }
    }
}

fn view_of(a: &DynArray, layout: Layout) -> ArgView<'_> {
    macro_rules! sl {
        ($x:expr) => {
            match layout {
                Layout::Contiguous => $x.view().into(),
                Layout::Step2 => $x.slice(s![..;2]).into_dyn().into(),
                Layout::Reversed => $x.slice(s![..;-1]).into_dyn().into(),
            }
        };
    }
    match a {
        DynArray::Bool(x) => sl!(x),
        DynArray::I32(x) => sl!(x),
        DynArray::I64(x) => sl!(x),
        DynArray::F32(x) => sl!(x),
        DynArray::F64(x) => sl!(x),
    }
}

fn unary_kernel(op: UnaryOp, dt: DType, r: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(dt);
    let x = b.push(Inst::Load { input: i }, dt);
    let y = b.push(Inst::Unary { op, arg: x }, r);
    b.finish(Output::Store { value: y })
}

fn binary_kernel(op: BinaryOp, dt: DType, r: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(dt);
    let j = b.input(dt);
    let x = b.push(Inst::Load { input: i }, dt);
    let y = b.push(Inst::Load { input: j }, dt);
    let z = b.push(Inst::Binary { op, lhs: x, rhs: y }, r);
    b.finish(Output::Store { value: z })
}

fn backend() -> CpuBackend {
    CpuBackend::new(1).unwrap()
}

#[test]
fn every_unary_op_matches_semantics() {
    let be = backend();
    for op in UnaryOp::ALL {
        for dt in DType::ALL {
            let Ok((c, r)) = op.signature(dt) else {
                continue;
            };
            if c != dt {
                continue;
            }
            let k = be.compile(&unary_kernel(op, dt, r)).unwrap();
            let xs = edges(dt);
            let expected: Vec<V> = xs.iter().map(|x| eval_unary(op, *x)).collect();
            for layout in LAYOUTS {
                let a = storage(&xs, dt, layout);
                let got = be.run(&k, &[view_of(&a, layout)], &[xs.len()]).unwrap();
                assert_eq!(got.dtype(), r);
                let what = format!("{op}.{dt} {layout:?}");
                let xs1 = std::slice::from_ref(&xs);
                check_within(&what, &got, &expected, xs1, ulp_bound(op, dt));
            }
        }
    }
}

#[test]
fn every_binary_op_matches_semantics() {
    let be = backend();
    for op in BinaryOp::ALL {
        for dt in DType::ALL {
            let Ok((c, r)) = op.signature(dt) else {
                continue;
            };
            if c != dt {
                continue;
            }
            let k = be.compile(&binary_kernel(op, dt, r)).unwrap();
            let e = edges(dt);
            // Every pair of edge values.
            let xs: Vec<V> = e.iter().flat_map(|a| e.iter().map(move |_| *a)).collect();
            let ys: Vec<V> = e.iter().flat_map(|_| e.iter().copied()).collect();
            let expected: Vec<V> = xs
                .iter()
                .zip(&ys)
                .map(|(a, b)| eval_binary(op, *a, *b))
                .collect();
            for layout in LAYOUTS {
                let a = storage(&xs, dt, layout);
                let b = storage(&ys, dt, Layout::Contiguous);
                let got = be
                    .run(
                        &k,
                        &[view_of(&a, layout), view_of(&b, Layout::Contiguous)],
                        &[xs.len()],
                    )
                    .unwrap();
                assert_eq!(got.dtype(), r);
                check_within(
                    &format!("{op}.{dt} {layout:?}"),
                    &got,
                    &expected,
                    &[xs.clone(), ys.clone()],
                    binary_ulp_bound(op, dt),
                );
            }
            // Broadcast: (m, 1) with (1, m) gives every pair too, in the same order.
            let m = e.len();
            let a = to_array(&e, dt, &[m, 1]);
            let b = to_array(&e, dt, &[1, m]);
            let got = be.run(&k, &[a.view(), b.view()], &[m, m]).unwrap();
            assert_eq!(got.shape(), &[m, m]);
            check_within(
                &format!("{op}.{dt} broadcast"),
                &got,
                &expected,
                &[xs.clone(), ys.clone()],
                binary_ulp_bound(op, dt),
            );
        }
    }
}

#[test]
fn simd_loop_is_generated_for_uniform_width_kernels() {
    // Every single-op kernel whose values share one width must get the SIMD loop (a failing
    // vector lowering would silently fall back to the scalar-only function).
    let be = backend();
    let mut missing = Vec::new();
    for dt in [DType::I32, DType::I64, DType::F32, DType::F64] {
        for op in UnaryOp::ALL {
            if let Ok((c, r)) = op.signature(dt) {
                if c == dt && r == dt && !be.compile(&unary_kernel(op, dt, r)).unwrap().has_simd() {
                    missing.push(format!("{op}.{dt}"));
                }
            }
        }
        for op in BinaryOp::ALL {
            if let Ok((c, r)) = op.signature(dt) {
                if c == dt && (r == dt || r == DType::Bool) {
                    let mut k = binary_kernel(op, dt, r);
                    if r == DType::Bool {
                        // Store a number: comparisons feed a select.
                        let mut b = KernelBuilder::new();
                        let i = b.input(dt);
                        let j = b.input(dt);
                        let x = b.push(Inst::Load { input: i }, dt);
                        let y = b.push(Inst::Load { input: j }, dt);
                        let c = b.push(Inst::Binary { op, lhs: x, rhs: y }, r);
                        let z = b.push(
                            Inst::Select {
                                cond: c,
                                on_true: x,
                                on_false: y,
                            },
                            dt,
                        );
                        k = b.finish(Output::Store { value: z });
                    }
                    if !be.compile(&k).unwrap().has_simd() {
                        missing.push(format!("{op}.{dt}"));
                    }
                }
            }
        }
    }
    for (from, to) in [
        (DType::I32, DType::F32),
        (DType::F32, DType::I32),
        (DType::I64, DType::F64),
        (DType::F64, DType::I64),
    ] {
        if !be.compile(&cast_kernel(from, to)).unwrap().has_simd() {
            missing.push(format!("cast {from}->{to}"));
        }
    }
    assert!(missing.is_empty(), "no SIMD loop for: {missing:?}");
}

fn cast_kernel(from: DType, to: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(from);
    let x = b.push(Inst::Load { input: i }, from);
    let y = b.push(Inst::Cast { arg: x }, to);
    b.finish(Output::Store { value: y })
}

#[test]
fn casts_between_all_dtypes_match_astype() {
    let be = backend();
    for from in DType::ALL {
        for to in DType::ALL {
            let k = be.compile(&cast_kernel(from, to)).unwrap();
            let xs = edges(from);
            let expected: Vec<V> = xs.iter().map(|x| eval_cast(*x, to)).collect();
            for layout in LAYOUTS {
                let a = storage(&xs, from, layout);
                let got = be.run(&k, &[view_of(&a, layout)], &[xs.len()]).unwrap();
                check_same(
                    &format!("cast {from}->{to} {layout:?}"),
                    &got,
                    &expected,
                    std::slice::from_ref(&xs),
                );
            }
        }
    }
}

#[test]
fn casts_through_bool_masks_in_the_simd_loop() {
    // f64 -> bool -> f64 and i32 -> bool -> i32 (bool lives as a lane mask), and a
    // comparison cast to a number.
    let be = backend();
    for dt in [DType::F64, DType::I32, DType::F32, DType::I64] {
        let mut b = KernelBuilder::new();
        let i = b.input(dt);
        let x = b.push(Inst::Load { input: i }, dt);
        let m = b.push(Inst::Cast { arg: x }, DType::Bool);
        let n = b.push(
            Inst::Unary {
                op: UnaryOp::Not,
                arg: m,
            },
            DType::Bool,
        );
        let y = b.push(Inst::Cast { arg: n }, dt);
        let k = be.compile(&b.finish(Output::Store { value: y })).unwrap();
        assert!(k.has_simd(), "{dt}");
        let xs = edges(dt);
        let a = to_array(&xs, dt, &[xs.len()]);
        let got = be.run(&k, &[a.view()], &[xs.len()]).unwrap();
        let expected: Vec<V> = xs
            .iter()
            .map(|x| {
                let V::B(m) = eval_cast(*x, DType::Bool) else {
                    unreachable!()
                };
                eval_cast(V::B(!m), dt)
            })
            .collect();
        check_same(
            &format!("bool round trip {dt}"),
            &got,
            &expected,
            std::slice::from_ref(&xs),
        );
    }
}

#[test]
fn select_with_bool_input_and_with_comparison() {
    let be = backend();
    let n = 37;
    let c: Vec<V> = (0..n).map(|i| V::B(i % 3 == 0)).collect();
    let x: Vec<V> = (0..n).map(|i| V::F64(i as f64)).collect();
    let y: Vec<V> = (0..n).map(|i| V::F64(-(i as f64) * 0.5)).collect();
    // select(c, x, y) with a bool input (scalar loop only).
    let mut b = KernelBuilder::new();
    let (ic, ix, iy) = (
        b.input(DType::Bool),
        b.input(DType::F64),
        b.input(DType::F64),
    );
    let vc = b.push(Inst::Load { input: ic }, DType::Bool);
    let vx = b.push(Inst::Load { input: ix }, DType::F64);
    let vy = b.push(Inst::Load { input: iy }, DType::F64);
    let s = b.push(
        Inst::Select {
            cond: vc,
            on_true: vx,
            on_false: vy,
        },
        DType::F64,
    );
    let k = be.compile(&b.finish(Output::Store { value: s })).unwrap();
    let (ca, xa, ya) = (
        to_array(&c, DType::Bool, &[n]),
        to_array(&x, DType::F64, &[n]),
        to_array(&y, DType::F64, &[n]),
    );
    let got = be
        .run(&k, &[ca.view(), xa.view(), ya.view()], &[n])
        .unwrap();
    let expected: Vec<V> = (0..n)
        .map(|i| if let V::B(true) = c[i] { x[i] } else { y[i] })
        .collect();
    check_same("select bool input", &got, &expected, &[]);

    // where(x > y * 3, x, y) on i32: SIMD masks.
    let mut b = KernelBuilder::new();
    let (ix, iy) = (b.input(DType::I32), b.input(DType::I32));
    let vx = b.push(Inst::Load { input: ix }, DType::I32);
    let vy = b.push(Inst::Load { input: iy }, DType::I32);
    let three = b.push(Inst::Const(Const::I32(3)), DType::I32);
    let y3 = b.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: vy,
            rhs: three,
        },
        DType::I32,
    );
    let gt = b.push(
        Inst::Binary {
            op: BinaryOp::Gt,
            lhs: vx,
            rhs: y3,
        },
        DType::Bool,
    );
    let s = b.push(
        Inst::Select {
            cond: gt,
            on_true: vx,
            on_false: vy,
        },
        DType::I32,
    );
    let k = be.compile(&b.finish(Output::Store { value: s })).unwrap();
    assert!(k.has_simd());
    let xs: Vec<i32> = (0..n as i32).map(|i| i * 7 - 100).collect();
    let ys: Vec<i32> = (0..n as i32).map(|i| 20 - i * 2).collect();
    let got = be
        .run(
            &k,
            &[
                Array1::from(xs.clone()).view().into(),
                Array1::from(ys.clone()).view().into(),
            ],
            &[n],
        )
        .unwrap();
    let expected: Vec<V> = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| V::I32(if *x > y * 3 { *x } else { *y }))
        .collect();
    check_same("select i32 comparison", &got, &expected, &[]);
}

/// `x * 2.0 + y` in f64.
fn axpy_kernel() -> Kernel {
    let mut b = KernelBuilder::new();
    let (ix, iy) = (b.input(DType::F64), b.input(DType::F64));
    let vx = b.push(Inst::Load { input: ix }, DType::F64);
    let vy = b.push(Inst::Load { input: iy }, DType::F64);
    let two = b.push(Inst::Const(Const::F64(2.0)), DType::F64);
    let m = b.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: vx,
            rhs: two,
        },
        DType::F64,
    );
    let r = b.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m,
            rhs: vy,
        },
        DType::F64,
    );
    b.finish(Output::Store { value: r })
}

#[test]
fn zero_dim_and_broadcast_inputs() {
    let be = backend();
    let k = be.compile(&axpy_kernel()).unwrap();
    // 0-d with 0-d: a 0-d result.
    let x = ndarray::arr0(1.5).into_dyn();
    let y = ndarray::arr0(0.25).into_dyn();
    let got = be.run(&k, &[(&x).into(), (&y).into()], &[]).unwrap();
    assert_eq!(got.shape(), &[] as &[usize]);
    assert_eq!(got.scalar_f64(), Some(3.25));
    // 0-d with (3, 4), and (3, 1) with (4,).
    let m = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
    let got = be
        .run(&k, &[(&x).into(), (&m).into()], &[3, 4])
        .unwrap()
        .into_f64()
        .unwrap();
    assert_eq!(got, m.mapv(|v| 3.0 + v).into_dyn());
    let col = Array2::from_shape_fn((3, 1), |(i, _)| i as f64);
    let row = Array1::from(vec![10.0, 20.0, 30.0, 40.0]);
    let got = be
        .run(&k, &[(&col).into(), (&row).into()], &[3, 4])
        .unwrap()
        .into_f64()
        .unwrap();
    let expected = Array2::from_shape_fn((3, 4), |(i, j)| i as f64 * 2.0 + row[j]);
    assert_eq!(got, expected.into_dyn());
}

#[test]
fn two_dimensional_non_contiguous_views() {
    let be = backend();
    let k = be.compile(&axpy_kernel()).unwrap();
    let big = Array2::from_shape_fn((7, 10), |(i, j)| (i * 10 + j) as f64 * 0.5);
    let a = big.slice(s![1..6;2, ..;3]); // (3, 4), strides (20, 3)
    let b = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f64 - 5.0);
    let bt = b.t(); // (3, 4), strides (1, 3)
    let got = be
        .run(&k, &[a.into(), bt.into()], &[3, 4])
        .unwrap()
        .into_f64()
        .unwrap();
    let expected = Array2::from_shape_fn((3, 4), |(i, j)| a[[i, j]] * 2.0 + bt[[i, j]]);
    assert_eq!(got, expected.into_dyn());
    // A contiguous 3-D array coalesces to one run; results are the same.
    let c = ArrayD::from_shape_fn(IxDyn(&[2, 3, 5]), |ix| {
        (ix[0] * 15 + ix[1] * 5 + ix[2]) as f64
    });
    let got = be
        .run(&k, &[(&c).into(), (&c).into()], &[2, 3, 5])
        .unwrap()
        .into_f64()
        .unwrap();
    assert_eq!(got, c.mapv(|v| v * 3.0));
}

#[test]
fn flat_path_takes_contiguous_and_one_element_inputs_only() {
    let be = backend();
    let k = be.compile(&axpy_kernel()).unwrap();
    // SAFETY: `k.code.code` was compiled from the kernel with the `KernelFn` signature, and
    // `store_flat` is given inputs of the kernel's dtypes, as `run_many` would.
    let f: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(k.code.code) };
    let m = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64 - 2.5);
    let one = ndarray::arr1(&[0.75]);
    let x = ndarray::arr0(1.5).into_dyn();
    let expected = m.mapv(|v| v * 2.0 + 0.75).into_dyn();
    // C-contiguous with the space's shape, and one element broadcast: one run, the same
    // values as the walker's path on a strided view of the same numbers.
    let flat = CpuBackend::store_flat(&k, f, &[(&m).into(), (&one).into()], &[3, 4], 12)
        .expect("contiguous and one-element inputs take the flat path");
    assert_eq!(flat[0].clone().into_f64().unwrap(), expected);
    let wide = Array2::from_shape_fn((3, 8), |(i, j)| m[[i, j / 2]]);
    let strided = wide.slice(s![.., ..;2]);
    assert!(CpuBackend::store_flat(&k, f, &[strided.into(), (&one).into()], &[3, 4], 12).is_none());
    let walked = be
        .run(&k, &[strided.into(), (&one).into()], &[3, 4])
        .unwrap();
    assert_eq!(walked.into_f64().unwrap(), expected);
    // A transposed (Fortran-order) input, and an input broadcast along an axis, are not flat.
    let t = m.t().as_standard_layout().into_owned();
    assert!(t.is_standard_layout());
    assert!(CpuBackend::store_flat(&k, f, &[t.t().into(), (&x).into()], &[3, 4], 12).is_none());
    let row = Array1::from(vec![1.0, 2.0, 3.0, 4.0]);
    assert!(CpuBackend::store_flat(&k, f, &[(&row).into(), (&m).into()], &[3, 4], 12).is_none());
    // Empty space: outputs of no elements, no call.
    let e = ArrayD::<f64>::zeros(IxDyn(&[0, 4]));
    let got = CpuBackend::store_flat(&k, f, &[(&e).into(), (&x).into()], &[0, 4], 0).unwrap();
    assert_eq!(got[0].shape(), &[0, 4]);
}

#[test]
fn empty_iteration_spaces() {
    let be = backend();
    let k = be.compile(&axpy_kernel()).unwrap();
    let e = ArrayD::<f64>::zeros(IxDyn(&[3, 0]));
    let got = be.run(&k, &[(&e).into(), (&e).into()], &[3, 0]).unwrap();
    assert_eq!(got.shape(), &[3, 0]);
    let s = be.compile(&sum_kernel(DType::F64)).unwrap();
    let z = ArrayD::<f64>::zeros(IxDyn(&[0]));
    let got = be.run(&s, &[(&z).into()], &[0]).unwrap();
    assert_eq!(got.scalar_f64(), Some(0.0));
}

/// `sum(x)` for a float kernel, `sum(int64(x))` otherwise.
fn sum_kernel(dt: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(dt);
    let mut x = b.push(Inst::Load { input: i }, dt);
    if !dt.is_float() && dt != DType::I64 {
        x = b.push(Inst::Cast { arg: x }, DType::I64);
    }
    b.finish(Output::Reduce {
        op: ReduceOp::Sum,
        value: x,
    })
}

#[test]
fn float32_sum_is_accurate() {
    let be = backend();
    let k = be.compile(&sum_kernel(DType::F32)).unwrap();
    assert!(k.has_simd());
    let n = 10_000_000;
    let x: Vec<f32> = (0..n).map(|i| 0.1 + (i % 1000) as f32 * 1e-4).collect();
    let exact: f64 = x.iter().map(|v| *v as f64).sum::<f64>(); // f64 sums of f32 values: ~1e-9 relative
    let got = be
        .run(&k, &[Array1::from(x.clone()).view().into()], &[n])
        .unwrap();
    let DynArray::F32(g) = &got else {
        panic!("dtype")
    };
    let g = g[[]];
    assert!(((g as f64 - exact) / exact).abs() < 1e-7, "{g} vs {exact}");
    // Strided input (scalar loop), same accuracy.
    let xs = Array1::from(x.iter().flat_map(|v| [*v, 1e30]).collect::<Vec<f32>>());
    let got = be.run(&k, &[xs.slice(s![..;2]).into()], &[n]).unwrap();
    assert!(((got.scalar_f64().unwrap() - exact) / exact).abs() < 1e-7);
}

#[test]
fn float64_sum_is_pairwise_accurate() {
    let be = backend();
    let k = be.compile(&sum_kernel(DType::F64)).unwrap();
    let n = 1_000_003;
    let x: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64) * 1e-7).collect();
    // Exact: n + 1e-7 * n(n-1)/2.
    let exact = n as f64 + 1e-7 * (n as f64) * (n as f64 - 1.0) / 2.0;
    let got = be
        .run(&k, &[Array1::from(x).view().into()], &[n])
        .unwrap()
        .scalar_f64()
        .unwrap();
    assert!(((got - exact) / exact).abs() < 1e-14, "{got} vs {exact}");
    // Small cases, every length around the SIMD step and block size, against an exact sum of
    // small integers.
    for len in 0..300usize {
        let x: Vec<f64> = (0..len).map(|i| (i % 17) as f64 - 8.0).collect();
        let got = be
            .run(&k, &[Array1::from(x.clone()).view().into()], &[len])
            .unwrap();
        assert_eq!(got.scalar_f64(), Some(x.iter().sum::<f64>()), "len {len}");
    }
}

#[test]
fn integer_sums_wrap() {
    let be = backend();
    let k = be.compile(&sum_kernel(DType::I64)).unwrap();
    let x = Array1::from(vec![i64::MAX, 1, 5, -2]);
    let got = be.run(&k, &[(&x).into()], &[4]).unwrap();
    assert_eq!(got.into_i64().unwrap()[[]], i64::MIN.wrapping_add(3));
    let k = be.compile(&sum_kernel(DType::Bool)).unwrap();
    let b = Array1::from((0..1001).map(|i| i % 3 == 0).collect::<Vec<bool>>());
    let got = be.run(&k, &[(&b).into()], &[1001]).unwrap();
    assert_eq!(got.into_i64().unwrap()[[]], 334);
    let k = be.compile(&sum_kernel(DType::I32)).unwrap();
    let v = Array1::from(vec![i32::MAX; 5]);
    let got = be.run(&k, &[(&v).into()], &[5]).unwrap();
    assert_eq!(got.into_i64().unwrap()[[]], i32::MAX as i64 * 5);
}

/// `reps` nested `sin` per element: tens of nanoseconds each (a libm call per lane).
fn sin_chain_kernel(reps: usize) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F64);
    let mut v = b.push(Inst::Load { input: i }, DType::F64);
    for _ in 0..reps {
        v = b.push(
            Inst::Unary {
                op: UnaryOp::Sin,
                arg: v,
            },
            DType::F64,
        );
    }
    b.finish(Output::Store { value: v })
}

/// Threads follow each kernel's measured cost: 4096 elements of a sin chain (hundreds of
/// microseconds) go to the pool, 4096 elements of a copy (about a microsecond, below the
/// hand-off) stay on the calling thread; results equal a one-thread backend's either way.
/// The hand-off is fixed at 20 us (a typical measure here) so that a test machine under load
/// cannot move the break-even point; the kernels' costs are still measured.
#[test]
fn the_thread_choice_follows_the_kernels_measured_cost() {
    let two = CpuBackend::new(2).unwrap();
    two.assume_handoff_s(20e-6);
    let one = backend();
    let n = 4096;
    let x = Array1::from_shape_fn(n, |i| i as f64 * 1e-3);
    let heavy = two.compile(&sin_chain_kernel(8)).unwrap();
    let before = two.runs();
    for _ in 0..3 {
        let got = two.run(&heavy, &[(&x).into()], &[n]).unwrap();
        let k1 = one.compile(&sin_chain_kernel(8)).unwrap();
        assert!(got == one.run(&k1, &[(&x).into()], &[n]).unwrap());
    }
    assert_eq!(two.runs().parallel - before.parallel, 3, "{:?}", two.runs());
    let copy = two
        .compile(&unary_kernel(UnaryOp::Abs, DType::F64, DType::F64))
        .unwrap();
    let before = two.runs();
    for _ in 0..5 {
        let got = two.run(&copy, &[(&x).into()], &[n]).unwrap();
        assert_eq!(got.into_f64().unwrap()[[7]], x[7]);
    }
    // One preempted probe could misjudge a call; most must stay serial.
    assert!(two.runs().serial - before.serial >= 4, "{:?}", two.runs());
    // Reductions follow the same rule over their fixed chunks, with the same bits.
    let sum = two.compile(&sum_kernel(DType::F64)).unwrap();
    let big = Array1::from_shape_fn(1 << 20, |i| (i as f64 * 0.37).sin());
    let a = two.run(&sum, &[(&big).into()], &[1 << 20]).unwrap();
    let s1 = one.compile(&sum_kernel(DType::F64)).unwrap();
    let b = one.run(&s1, &[(&big).into()], &[1 << 20]).unwrap();
    assert_eq!(
        a.scalar_f64().unwrap().to_bits(),
        b.scalar_f64().unwrap().to_bits()
    );
}

#[test]
fn many_threads_equal_one_thread() {
    let one = CpuBackend::new(1).unwrap();
    let four = CpuBackend::new(4).unwrap();
    assert_eq!(four.threads(), 4);
    let n = 3_000_000;
    let x = Array1::from_shape_fn(n, |i| (i as f64 * 0.37).sin());
    let y = Array1::from_shape_fn(2 * n, |i| i as f64 * 1e-3);
    let yv = y.slice(s![..;-2]);
    let (k1, k4) = (
        one.compile(&axpy_kernel()).unwrap(),
        four.compile(&axpy_kernel()).unwrap(),
    );
    let a = one.run(&k1, &[(&x).into(), yv.into()], &[n]).unwrap();
    let b = four.run(&k4, &[(&x).into(), yv.into()], &[n]).unwrap();
    assert!(a == b);
    assert_eq!(a.into_f64().unwrap()[[12345]], x[12345] * 2.0 + yv[12345]);
    // Sums: bitwise equal regardless of the thread count, contiguous and strided.
    let (s1, s4) = (
        one.compile(&sum_kernel(DType::F64)).unwrap(),
        four.compile(&sum_kernel(DType::F64)).unwrap(),
    );
    for v in [x.view(), yv] {
        let a = one
            .run(&s1, &[v.into()], &[n])
            .unwrap()
            .scalar_f64()
            .unwrap();
        let b = four
            .run(&s4, &[v.into()], &[n])
            .unwrap()
            .scalar_f64()
            .unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
        let naive: f64 = v.iter().sum();
        assert!((a - naive).abs() <= 1e-9 * naive.abs().max(1.0));
    }
}

#[test]
fn compiling_twice_hits_the_cache() {
    let be = backend();
    let a = be.compile(&axpy_kernel()).unwrap();
    let b = be.compile(&axpy_kernel()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(
        be.counters(),
        CpuCounters {
            compilations: 1,
            cache_hits: 1,
            evictions: 0
        }
    );
    be.compile(&sum_kernel(DType::F64)).unwrap();
    assert_eq!(
        be.counters(),
        CpuCounters {
            compilations: 2,
            cache_hits: 1,
            evictions: 0
        }
    );
}

#[test]
fn bad_arguments_are_errors() {
    let be = backend();
    let k = be.compile(&axpy_kernel()).unwrap();
    let x = Array1::from(vec![1.0, 2.0, 3.0]);
    let i = Array1::from(vec![1i64, 2, 3]);
    assert!(matches!(
        be.run(&k, &[(&x).into()], &[3]),
        Err(Error::Argument(_))
    ));
    assert!(matches!(
        be.run(&k, &[(&x).into(), (&i).into()], &[3]),
        Err(Error::Argument(_))
    ));
    assert!(matches!(
        be.run(&k, &[(&x).into(), (&x).into()], &[4]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        be.run(&k, &[(&x).into(), (&x).into()], &[]),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut bad = axpy_kernel();
    bad.insts[2].inst = Inst::Binary {
        op: BinaryOp::Mul,
        lhs: KV(0),
        rhs: KV(5),
    };
    assert!(matches!(be.compile(&bad), Err(Error::InvalidKernel(_))));
}

/// Rough throughput numbers (run with `--ignored --nocapture`); asserts nothing but equality.
#[test]
#[ignore]
fn throughput_report() {
    let n = 10_000_000;
    let x = Array1::from_shape_fn(n, |i| i as f64 * 1e-6);
    let y = Array1::from_shape_fn(n, |i| 1.0 - i as f64 * 1e-7);
    for threads in [1, 2] {
        let be = CpuBackend::new(threads).unwrap();
        let k = be.compile(&axpy_kernel()).unwrap();
        let s = be.compile(&sum_kernel(DType::F64)).unwrap();
        let t = std::time::Instant::now();
        let mut r = None;
        for _ in 0..10 {
            r = Some(be.run(&k, &[(&x).into(), (&y).into()], &[n]).unwrap());
        }
        let dt = t.elapsed().as_secs_f64() / 10.0;
        println!(
            "threads {threads}: axpy {:.2} GB/s ({:.2} ms)",
            24.0 * n as f64 / dt / 1e9,
            dt * 1e3
        );
        let t = std::time::Instant::now();
        for _ in 0..10 {
            be.run(&s, &[(&x).into()], &[n]).unwrap();
        }
        let dt = t.elapsed().as_secs_f64() / 10.0;
        println!(
            "threads {threads}: sum {:.2} GB/s ({:.2} ms)",
            8.0 * n as f64 / dt / 1e9,
            dt * 1e3
        );
        let xs = x.slice(s![..;-1]);
        let t = std::time::Instant::now();
        for _ in 0..10 {
            be.run(&k, &[xs.into(), (&y).into()], &[n]).unwrap();
        }
        let dt = t.elapsed().as_secs_f64() / 10.0;
        println!(
            "threads {threads}: axpy reversed (scalar loop) {:.2} ms",
            dt * 1e3
        );
        assert_eq!(r.unwrap().into_f64().unwrap()[[7]], x[7] * 2.0 + y[7]);
    }
    // Baseline: ndarray's own `x * 2 + y` (allocates its output too).
    let t = std::time::Instant::now();
    for _ in 0..10 {
        let r = &x * 2.0 + &y;
        assert_eq!(r.len(), n);
    }
    let dt = t.elapsed().as_secs_f64() / 10.0;
    println!("ndarray x * 2 + y: {:.2} ms", dt * 1e3);
}

#[test]
fn kernels_without_inputs_and_sums_of_broadcasts() {
    let be = backend();
    // A constant store fills the whole (coalesced) iteration space.
    let mut b = KernelBuilder::new();
    let c = b.push(Inst::Const(Const::I32(-7)), DType::I32);
    let k = be.compile(&b.finish(Output::Store { value: c })).unwrap();
    let got = be.run(&k, &[], &[3, 5, 2]).unwrap().into_i32().unwrap();
    assert_eq!(got, ArrayD::from_elem(IxDyn(&[3, 5, 2]), -7));
    // sum over a (1000, 3) space of a (3,) row broadcast down the rows, and of a 2-D view.
    let s = be.compile(&sum_kernel(DType::F64)).unwrap();
    let row = Array1::from(vec![0.5, -1.25, 4.0]);
    let got = be.run(&s, &[(&row).into()], &[1000, 3]).unwrap();
    assert_eq!(got.scalar_f64(), Some(3250.0));
    let m = Array2::from_shape_fn((300, 7), |(i, j)| (i * 7 + j) as f64);
    let t = m.t();
    let got = be.run(&s, &[t.into()], &[7, 300]).unwrap();
    assert_eq!(got.scalar_f64(), Some((2100 * 2099 / 2) as f64));
}

// ---- reductions along axes, every reduce op, multi-output kernels ----

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
        (Err(Error::Value(a)), Err(Error::Value(b))) => assert_eq!(a, b, "{what}"),
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
        Err(Error::Value(m)) => assert_eq!(
            m,
            "zero-size array to reduction operation max which has no identity"
        ),
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

/// `Inst::Fallback`: the scalar call replaces the value exactly in the lanes whose condition
/// holds, in the SIMD loop (vectors with none, some and all lanes needing it) and in the
/// scalar loop, for unary and binary calls, f64 and f32.
#[test]
fn fallback_calls_the_scalar_function_in_the_lanes_that_need_it() {
    use crate::kir::Call;
    let be = backend();
    for dt in [DType::F64, DType::F32] {
        for binary in [false, true] {
            let mut b = KernelBuilder::new();
            let i = b.input(dt);
            let j = b.input(dt);
            let x = b.push(Inst::Load { input: i }, dt);
            let y = b.push(Inst::Load { input: j }, dt);
            let c = b.push(Inst::Const(sem::cast(Const::F64(100.0), dt)), dt);
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
                dt,
            );
            let call = if binary {
                Call::Binary(BinaryOp::Hypot, x, y)
            } else {
                Call::Unary(UnaryOp::Sin, x)
            };
            let f = b.push(Inst::Fallback { cond, value, call }, dt);
            let k = b.finish(Output::Store { value: f });
            k.verify().unwrap();
            // Runs of small and large values, so vectors have no, some and all lanes large.
            let pattern = [
                1.0, 2.0, 300.0, 3.0, 400.0, 500.0, 600.0, 700.0, -4.0, 5.0, 6.0,
            ];
            let xs: Vec<f64> = (0..53).map(|n| pattern[n % 11] + n as f64).collect();
            let ys: Vec<f64> = (0..53).map(|n| 0.25 * n as f64 - 3.0).collect();
            let vx: Vec<V> = xs.iter().map(|v| float_v(*v, dt)).collect();
            let vy: Vec<V> = ys.iter().map(|v| float_v(*v, dt)).collect();
            let expected: Vec<V> = vx
                .iter()
                .zip(&vy)
                .map(|(a, bb)| {
                    if a.as_f64() > 100.0 {
                        match call {
                            Call::Unary(op, _) => eval_unary(op, *a),
                            Call::Binary(op, _, _) => eval_binary(op, *a, *bb),
                        }
                    } else {
                        eval_binary(BinaryOp::Mul, *a, *bb)
                    }
                })
                .collect();
            let compiled = be.compile(&k).unwrap();
            assert!(
                compiled.has_simd(),
                "the fallback compiles in the SIMD loop"
            );
            for layout in LAYOUTS {
                let (sa, sb) = (storage(&vx, dt, layout), storage(&vy, dt, layout));
                let got = be
                    .run(
                        &compiled,
                        &[view_of(&sa, layout), view_of(&sb, layout)],
                        &[xs.len()],
                    )
                    .unwrap();
                let what = format!("fallback {call} {dt} {layout:?}");
                check_same(&what, &got, &expected, &[vx.clone(), vy.clone()]);
                let interp =
                    crate::interp::run(&k, &[view_of(&sa, layout), view_of(&sb, layout)], &[53])
                        .unwrap();
                check_same(
                    &format!("{what} (interp)"),
                    &interp,
                    &expected,
                    std::slice::from_ref(&vx),
                );
            }
        }
    }
}

/// The expanded `sin` with huge arguments (the fallback's lanes) mixed into moderate ones:
/// the huge lanes are libm's results bit for bit, the others within the documented bound.
#[test]
fn expanded_trig_falls_back_to_libm_for_huge_arguments() {
    let be = backend();
    for dt in [DType::F64, DType::F32] {
        for op in [UnaryOp::Sin, UnaryOp::Cos, UnaryOp::Tan] {
            let k = crate::mathlib::expand_all(&unary_kernel(op, dt, dt));
            assert!(k.to_string().contains("fallback"));
            let compiled = be.compile(&k).unwrap();
            assert!(compiled.has_simd());
            let xs: Vec<f64> = (0..41)
                .map(|n| match n % 5 {
                    0 => 1e22 + n as f64,
                    1 => -(n as f64) * 0.37,
                    2 => 3e7 * n as f64,
                    3 => f64::INFINITY,
                    _ => n as f64 * 12.5,
                })
                .collect();
            let vx: Vec<V> = xs.iter().map(|v| float_v(*v, dt)).collect();
            let big = if dt == DType::F64 { 1.6e6 } else { 6.4e3 };
            for layout in LAYOUTS {
                let a = storage(&vx, dt, layout);
                let got = values(&be.run(&compiled, &[view_of(&a, layout)], &[41]).unwrap());
                for (g, x) in got.iter().zip(&vx) {
                    let want = eval_unary(op, *x);
                    let bound = crate::mathlib::ULP_BOUNDS
                        .iter()
                        .find(|b| b.0 == op && b.1 == dt)
                        .map(|b| b.2)
                        .unwrap();
                    let ulp = if x.as_f64().abs() > big { 0 } else { bound };
                    assert!(
                        g.within_ulp(want, ulp),
                        "{op}.{dt} {layout:?}({x:?}) = {g:?}, libm {want:?}"
                    );
                }
            }
        }
    }
}

fn float_v(x: f64, dt: DType) -> V {
    if dt == DType::F64 {
        V::F64(x)
    } else {
        V::F32(x as f32)
    }
}

/// Columns of floats as arrays of `dt`.
fn float_array(dt: DType, xs: &[f64]) -> crate::array::DynArray {
    match dt {
        DType::F64 => Array1::from(xs.to_vec()).into(),
        _ => Array1::from(xs.iter().map(|v| *v as f32).collect::<Vec<_>>()).into(),
    }
}

/// The results as f64 bits of the dtype (f32 bits widened).
fn float_bits(a: crate::array::DynArray) -> Vec<u64> {
    match a {
        crate::array::DynArray::F64(a) => a.iter().map(|v| v.to_bits()).collect(),
        crate::array::DynArray::F32(a) => a.iter().map(|v| v.to_bits() as u64).collect(),
        _ => unreachable!(),
    }
}

/// `fma(a, b, c)` is one rounding in the JIT (SIMD loop and scalar tail) and the interpreter:
/// bit for bit `mul_add`, on operands where `a * b + c` rounded twice differs, and on NaN,
/// infinities and signed zeros. Without FMA on the target, compiling it is a typed error.
#[test]
fn fma_is_fused_in_jit_and_interpreter() {
    let be = backend();
    let e = 2f64.powi(-27);
    let cases: Vec<[f64; 3]> = vec![
        [1.0 + e, 1.0 - e, -1.0],
        [1.0 + 2f64.powi(-52), 1.0 + 2f64.powi(-52), -1.0],
        [0.1, 10.0, -1.0],
        [3.0, 1.0 / 3.0, -1.0],
        [f64::NAN, 1.0, 2.0],
        [1.0, 2.0, -f64::NAN],
        [f64::INFINITY, 0.0, 1.0],
        [f64::INFINITY, 2.0, f64::NEG_INFINITY],
        [f64::INFINITY, 2.0, 1.0],
        [-0.0, 0.0, -0.0],
        [0.0, 0.0, -0.0],
        [1e308, 10.0, -1e308],
        [1e-200, 1e-200, 0.0],
        [2f64.powi(-537), 2f64.powi(-537), -0.0],
    ];
    for dt in [DType::F64, DType::F32] {
        let mut b = KernelBuilder::new();
        let ins: Vec<KV> = (0..3)
            .map(|_| {
                let i = b.input(dt);
                b.push(Inst::Load { input: i }, dt)
            })
            .collect();
        let f = b.push(
            Inst::Fma {
                a: ins[0],
                b: ins[1],
                c: ins[2],
            },
            dt,
        );
        let k = b.finish(Output::Store { value: f });
        k.verify().unwrap();
        assert!(k.to_string().contains("fma."), "{k}");
        // Repeated so that the SIMD loop and the scalar tail both see every case.
        let n = cases.len() * 5 + 3;
        let col = |j: usize| -> Vec<f64> {
            let mut v: Vec<f64> = (0..n).map(|i| cases[i % cases.len()][j]).collect();
            if dt == DType::F32 {
                // f32 cases where the unfused result differs.
                let e32 = 2f64.powi(-12);
                let pick = [1.0 + e32, 1.0 - e32, -1.0];
                v[0] = pick[j];
            }
            v
        };
        let cols: Vec<Vec<f64>> = (0..3).map(col).collect();
        let arrays: Vec<_> = cols.iter().map(|c| float_array(dt, c)).collect();
        let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
        let want: Vec<u64> = (0..n)
            .map(|i| match dt {
                DType::F64 => cols[0][i].mul_add(cols[1][i], cols[2][i]).to_bits(),
                _ => (cols[0][i] as f32)
                    .mul_add(cols[1][i] as f32, cols[2][i] as f32)
                    .to_bits() as u64,
            })
            .collect();
        // The cases are chosen so that fusing matters.
        let unfused_differs = (0..n).any(|i| {
            let u = match dt {
                DType::F64 => (cols[0][i] * cols[1][i] + cols[2][i]).to_bits(),
                _ => {
                    ((cols[0][i] as f32) * (cols[1][i] as f32) + cols[2][i] as f32).to_bits() as u64
                }
            };
            u != want[i]
        });
        assert!(unfused_differs, "{dt}: no case tells fused from unfused");
        let same = |got: &[u64], what: &str| {
            for i in 0..n {
                let nan = |b: u64| match dt {
                    DType::F64 => f64::from_bits(b).is_nan(),
                    _ => f32::from_bits(b as u32).is_nan(),
                };
                assert!(
                    got[i] == want[i] || (nan(got[i]) && nan(want[i])),
                    "{what} {dt} fma{:?}: {:#x}, mul_add {:#x}",
                    [cols[0][i], cols[1][i], cols[2][i]],
                    got[i],
                    want[i]
                );
            }
        };
        let interp = crate::interp::run(&k, &views, &[n]).unwrap();
        same(&float_bits(interp), "interpreter");
        if !crate::cpu::host_has_fma() {
            assert!(matches!(be.compile(&k), Err(Error::Compile(_))));
            continue;
        }
        let compiled = be.compile(&k).unwrap();
        assert!(compiled.has_simd());
        let got = be.run(&compiled, &views, &[n]).unwrap();
        same(&float_bits(got), "JIT");
    }
}

/// The lanes of `exp` that its FMA expansion leaves to libm (|x| beyond 708 / 86: overflow,
/// subnormal and zero results, infinities, NaN) are libm's results bit for bit, mixed into
/// ordinary lanes in the same vectors, in the JIT and the interpreter; the ordinary lanes
/// are within 1 ULP of libm.
#[test]
fn exp_fallback_lanes_are_libm() {
    let be = backend();
    for dt in [DType::F64, DType::F32] {
        let rare: Vec<f64> = if dt == DType::F64 {
            vec![
                708.0000001,
                709.0,
                709.782712893384,
                709.7827128933841,
                710.0,
                1e300,
                f64::INFINITY,
                -708.0000001,
                -708.4,
                -720.0,
                -744.0,
                -745.1332191019411,
                -745.1332191019412,
                -745.2,
                -1e300,
                f64::NEG_INFINITY,
                f64::NAN,
                -f64::NAN,
                f64::from_bits(0x7ff0_0000_0000_0001),
                f64::MAX,
                f64::MIN,
            ]
        } else {
            vec![
                86.00001,
                88.0,
                88.72283,
                88.72284,
                89.0,
                1e30,
                f64::INFINITY,
                -86.00001,
                -87.5,
                -95.0,
                -103.0,
                -103.97207,
                -103.97208,
                -110.0,
                f64::NEG_INFINITY,
                f64::NAN,
                -f64::NAN,
            ]
        };
        let ordinary = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-310, -3.7, 700.0, -700.0, 85.0];
        let mut xs = vec![];
        for (i, r) in rare.iter().enumerate() {
            xs.push(*r);
            xs.push(ordinary[i % ordinary.len()]);
            if i % 3 == 0 {
                xs.push(ordinary[(i + 3) % ordinary.len()]);
                xs.push(ordinary[(i + 5) % ordinary.len()]);
            }
        }
        let mut b = KernelBuilder::new();
        let i = b.input(dt);
        let x = b.push(Inst::Load { input: i }, dt);
        let y = b.push(
            Inst::Unary {
                op: UnaryOp::Exp,
                arg: x,
            },
            dt,
        );
        let raw = b.finish(Output::Store { value: y });
        let k = crate::mathlib::expand_for(
            &raw,
            crate::mathlib::Target {
                fma: true,
                tables: true,
                fallback: true,
            },
        );
        assert!(k.to_string().contains("fallback"), "{k}");
        let arr = float_array(dt, &xs);
        let want: Vec<u64> = xs
            .iter()
            .map(|x| match dt {
                DType::F64 => x.exp().to_bits(),
                _ => (*x as f32).exp().to_bits() as u64,
            })
            .collect();
        let f32 = dt == DType::F32;
        let check = |got: Vec<u64>, what: &str| {
            for (j, x) in xs.iter().enumerate() {
                let (g, w) = if f32 {
                    (
                        f32::from_bits(got[j] as u32) as f64,
                        f32::from_bits(want[j] as u32) as f64,
                    )
                } else {
                    (f64::from_bits(got[j]), f64::from_bits(want[j]))
                };
                let is_rare = if f32 {
                    (*x as f32).is_nan() || (*x as f32).abs() > 86.0
                } else {
                    x.is_nan() || x.abs() > 708.0
                };
                if is_rare {
                    assert!(
                        got[j] == want[j],
                        "{what} exp.{dt}({x:e}) = {g:e} ({:#x}), libm {w:e} ({:#x})",
                        got[j],
                        want[j]
                    );
                } else {
                    let u = if f32 {
                        sem::ulp_distance_f32(g as f32, w as f32)
                    } else {
                        sem::ulp_distance_f64(g, w)
                    };
                    assert!(
                        u <= 1,
                        "{what} exp.{dt}({x:e}) = {g:e}, libm {w:e}: {u} ULP"
                    );
                }
            }
        };
        check(
            float_bits(crate::interp::run(&k, &[arr.view()], &[xs.len()]).unwrap()),
            "interpreter",
        );
        if crate::cpu::host_has_fma() {
            let compiled = be.compile(&raw).unwrap();
            assert!(compiled.has_simd());
            check(
                float_bits(be.run(&compiled, &[arr.view()], &[xs.len()]).unwrap()),
                "JIT",
            );
        }
    }
}

/// A table lookup on the JIT, scalar and SIMD loops, reads entry `index & 127` for any int64
/// index (negative and huge ones included), as the interpreter does.
#[test]
fn table_lookups_mask_every_index() {
    use crate::kir::Table;
    let be = backend();
    for table in [Table::Exp2Hi, Table::Exp2Lo] {
        let mut b = KernelBuilder::new();
        let i = b.input(DType::I64);
        let v = b.push(Inst::Load { input: i }, DType::I64);
        let t = b.push(Inst::Lookup { table, index: v }, DType::F64);
        let k = b.finish(Output::Store { value: t });
        let ck = be.compile(&k).unwrap();
        assert!(ck.code.simd, "the lookup runs in the SIMD loop");
        let idx: Vec<i64> = (-300..300)
            .chain([i64::MIN, i64::MAX, i64::MIN + 1, 1 << 40, -(1 << 40)])
            .collect();
        let x = Array1::from(idx.clone()).into_dyn();
        let strided = Array1::from_iter(idx.iter().flat_map(|v| [*v, 0]));
        let want: Vec<u64> = idx
            .iter()
            .map(|j| table.entries()[(*j as usize) & 127])
            .collect();
        let bits = |a: DynArray| -> Vec<u64> {
            a.into_f64().unwrap().iter().map(|v| v.to_bits()).collect()
        };
        let n = idx.len();
        assert_eq!(bits(be.run(&ck, &[(&x).into()], &[n]).unwrap()), want);
        let sv = strided.slice(s![..;2]).into_dyn();
        assert_eq!(bits(be.run(&ck, &[sv.into()], &[n]).unwrap()), want);
        let interp = crate::interp::run(&k, &[(&x).into()], &[n]).unwrap();
        assert_eq!(bits(interp), want);
    }
}

/// `cargo test --release --lib exp_algorithms_speed -- --ignored --nocapture`: float64 `exp`
/// on the JIT by each algorithm the targets select (table, FMA polynomial, rational), one
/// thread, 10^4 elements in cache, best of many calls.
#[test]
#[ignore = "timing; run in release at normal priority"]
fn exp_algorithms_speed() {
    use crate::mathlib::{expand_for, Target};
    use std::time::Instant;
    let be = backend();
    let raw = unary_kernel(UnaryOp::Exp, DType::F64, DType::F64);
    let x = Array1::linspace(-20.0, 20.0, 10_000).into_dyn();
    let targets = [
        (
            "table",
            Target {
                fma: true,
                tables: true,
                fallback: true,
            },
        ),
        (
            "fma",
            Target {
                fma: true,
                tables: false,
                fallback: true,
            },
        ),
        (
            "rational",
            Target {
                fma: false,
                tables: false,
                fallback: true,
            },
        ),
    ];
    let ks: Vec<_> = targets
        .iter()
        .map(|(_, t)| be.compile_lowered(&raw, expand_for(&raw, *t)).unwrap())
        .collect();
    let mut best = vec![f64::INFINITY; ks.len()];
    for _ in 0..2000 {
        for (k, b) in ks.iter().zip(&mut best) {
            let t = Instant::now();
            std::hint::black_box(be.run(k, &[(&x).into()], &[10_000]).unwrap());
            *b = b.min(t.elapsed().as_secs_f64() / 10_000.0);
        }
    }
    for ((name, _), b) in targets.iter().zip(&best) {
        eprintln!("exp f64 {name:8}: {:.3} ns/elem", b * 1e9);
    }
}
