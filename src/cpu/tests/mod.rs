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
        _ => unreachable!("the scalar model covers V_DTYPES only"),
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
        _ => unreachable!("the scalar model covers V_DTYPES only"),
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
        _ => unreachable!("the scalar model covers V_DTYPES only"),
    }
}

fn values(a: &DynArray) -> Vec<V> {
    match a {
        DynArray::Bool(x) => x.iter().map(|v| V::B(*v)).collect(),
        DynArray::I32(x) => x.iter().map(|v| V::I32(*v)).collect(),
        DynArray::I64(x) => x.iter().map(|v| V::I64(*v)).collect(),
        DynArray::F32(x) => x.iter().map(|v| V::F32(*v)).collect(),
        DynArray::F64(x) => x.iter().map(|v| V::F64(*v)).collect(),
        _ => unreachable!("the scalar model covers V_DTYPES only"),
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
        _ => unreachable!("the scalar model covers V_DTYPES only"),
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

/// The dtypes the scalar model `V` here covers; the integer types beyond int32/int64 are
/// checked against the reference evaluator by tests/differential.rs and the golden fixtures.
const V_DTYPES: [DType; 5] = [DType::Bool, DType::I32, DType::I64, DType::F32, DType::F64];

fn backend() -> CpuBackend {
    CpuBackend::new(1).unwrap()
}

#[test]
fn every_unary_op_matches_semantics() {
    let be = backend();
    for op in UnaryOp::ALL {
        for dt in V_DTYPES {
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
        for dt in V_DTYPES {
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
    for from in V_DTYPES {
        for to in V_DTYPES {
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
        Err(Error::ArgumentCount {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        be.run(&k, &[(&x).into(), (&i).into()], &[3]),
        Err(Error::DtypeMismatch { name, expected: DType::F64, found: DType::I64 }) if name == "input 1"
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
    assert!(matches!(be.compile(&bad), Err(Error::InvalidKernel { .. })));
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

mod half;
mod math;
mod reductions;

#[test]
fn the_cost_models_fma_detection_agrees_with_the_jits() {
    let isa = native_isa().unwrap();
    assert_eq!(crate::target::host_has_fma(), codegen::has_fma(&isa));
}
