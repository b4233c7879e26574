//! float16 in the JIT: the conversions it emits as integer code (float16 <-> float32, float64
//! -> float16 through float32 rounded to odd, integers and bool through float32) and
//! `nextafter`, against the scalar definitions (`dtype::f16_*`, `semantics`), which are
//! checked here against the `half` crate's independent conversions. NumPy agreement is in the
//! golden fixtures (tests/golden_f16).
use super::{backend, cast_kernel};
use crate::dtype::{f16, f16_from_f32, f16_from_f64, f16_to_f32, Const, DType};
use crate::kir::{Inst, KernelBuilder, Output};
use crate::ops::BinaryOp;
use crate::semantics;
use crate::{DynArray, Element};
use ndarray::{Array1, ArrayD, IxDyn};

/// Every float16 bit pattern.
fn all_f16() -> Vec<f16> {
    (0..=u16::MAX).map(f16::from_bits).collect()
}

/// A deterministic spread of f64 values: every float16 and the midpoints between neighbours
/// (ties), each nudged one float64 ulp either way, scaled powers of ten, a pseudo-random walk
/// over the bit patterns, and the special values.
fn f64_samples() -> Vec<f64> {
    let mut v = Vec::new();
    let finite: Vec<f64> = all_f16()
        .into_iter()
        .map(|h| f16_to_f32(h) as f64)
        .filter(|x| x.is_finite())
        .collect();
    let mut sorted = finite.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for w in sorted.windows(2) {
        let mid = (w[0] + w[1]) / 2.0;
        v.extend([mid, f64::from_bits(mid.to_bits() + 1)]);
        if mid != 0.0 {
            v.push(f64::from_bits(mid.to_bits() - 1));
        }
    }
    v.extend(finite);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200_000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.push(f64::from_bits(s));
    }
    for e in -30..=30 {
        v.push(1.234_567_891_234_5 * 10f64.powi(e));
        v.push(-9.876_543_21 * 10f64.powi(e));
    }
    v.extend([
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        65504.0,
        65519.999,
        65520.0,
        -65510.0,
        65515.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        2f64.powi(-24),
        2f64.powi(-25),
        2f64.powi(-25) * 1.000001,
    ]);
    v
}

/// Element `i` of a 1-d array as a constant.
fn at(a: &DynArray, i: usize) -> Const {
    crate::dispatch!(a, x => x[IxDyn(&[i])].to_const())
}

fn same(a: f16, b: f16) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn conversions_match_the_half_crate() {
    for h in all_f16() {
        let (ours, theirs) = (f16_to_f32(h), h.to_f32());
        assert!(
            ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()),
            "{:#06x}",
            h.to_bits()
        );
    }
    // float32: the half crate rounds once, correctly.
    for x in f64_samples() {
        let y = x as f32;
        assert!(same(f16_from_f32(y), f16::from_f32(y)), "f32 {y:e}");
    }
    // float64: the half crate is off by one float16 just above some ties (it gives 0xfbfe for
    // -65488.00000000001; NumPy gives 0xfbff), so the oracle is the definition: the nearer
    // of the two neighbouring float16 values, the even one on a tie, infinity from 65520.
    let mut finite: Vec<(f64, f16)> = all_f16()
        .into_iter()
        .filter(|h| h.is_finite() && h.to_bits() != 0x8000)
        .map(|h| (f16_to_f32(h) as f64, h))
        .collect();
    finite.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    for x in f64_samples() {
        let want = if x.is_nan() {
            f16::NAN
        } else if x.abs() >= 65520.0 {
            if x > 0.0 {
                f16::INFINITY
            } else {
                f16::NEG_INFINITY
            }
        } else {
            let i = finite.partition_point(|p| p.0 <= x);
            // Past the largest finite value (below 65520): that value.
            let (lo, hi) = (finite[i.max(1) - 1], finite[i.min(finite.len() - 1)]);
            let mid = (lo.0 + hi.0) / 2.0;
            let pick = if x < mid || (x == mid && lo.1.to_bits() & 1 == 0) {
                lo.1
            } else {
                hi.1
            };
            // Zero keeps the sign of x.
            if f16_to_f32(pick) == 0.0 && x.is_sign_negative() {
                f16::NEG_ZERO
            } else {
                pick
            }
        };
        let ours = f16_from_f64(x);
        assert!(
            same(ours, want),
            "f64 {x:e}: {:#06x}, want {:#06x}",
            ours.to_bits(),
            want.to_bits()
        );
    }
    assert_eq!(f16_from_f64(-65488.00000000001).to_bits(), 0xfbff);
    // NaN: a quiet NaN of the operand's sign, as NumPy's float16 arithmetic gives.
    assert_eq!(f16_from_f32(f32::NAN).to_bits(), 0x7e00);
    assert_eq!(f16_from_f64(-f64::NAN).to_bits(), 0xfe00);
}

fn run_cast(from: DType, to: DType, input: DynArray) -> DynArray {
    let be = backend();
    let k = be.compile(&cast_kernel(from, to)).unwrap();
    let n = input.shape()[0];
    be.run(&k, &[input.view()], &[n]).unwrap()
}

fn check_cast(from: DType, to: DType, input: DynArray) {
    let got = run_cast(from, to, input.clone());
    let n = input.shape()[0];
    for i in 0..n {
        let x = at(&input, i);
        let want = semantics::cast(x, to);
        let have = at(&got, i);
        let ok = want.same(have) || (want.as_f64().is_nan() && have.as_f64().is_nan());
        assert!(ok, "cast {from}->{to} of {x}: {have} (want {want})");
    }
}

#[test]
fn jit_converts_every_float16_exactly() {
    let all: DynArray = Array1::from(all_f16()).into_dyn().into();
    for to in DType::ALL {
        check_cast(DType::F16, to, all.clone());
    }
}

#[test]
fn jit_rounds_to_float16_as_numpy() {
    let xs = f64_samples();
    let f64s: DynArray = Array1::from(xs.clone()).into_dyn().into();
    check_cast(DType::F64, DType::F16, f64s);
    let f32s: DynArray = Array1::from(xs.iter().map(|&x| x as f32).collect::<Vec<_>>())
        .into_dyn()
        .into();
    check_cast(DType::F32, DType::F16, f32s);
    // Integers and bool go through float32: every value of the narrow types, the edges of
    // the wide ones (past 65519 is infinity).
    let edges: Vec<i64> = vec![
        0,
        1,
        -1,
        2047,
        2049,
        4097,
        65504,
        65519,
        65520,
        -65520,
        1 << 24,
        (1 << 24) + 1,
        i32::MAX as i64,
        i64::MIN,
        i64::MAX,
    ];
    let i64s: DynArray = Array1::from(edges.clone()).into_dyn().into();
    check_cast(DType::I64, DType::F16, i64s);
    let u64s: DynArray = Array1::from(edges.iter().map(|&v| v as u64).collect::<Vec<_>>())
        .into_dyn()
        .into();
    check_cast(DType::U64, DType::F16, u64s);
    let i16s: DynArray = Array1::from((i16::MIN..=i16::MAX).collect::<Vec<_>>())
        .into_dyn()
        .into();
    check_cast(DType::I16, DType::F16, i16s);
    let u16s: DynArray = Array1::from((0..=u16::MAX).collect::<Vec<_>>())
        .into_dyn()
        .into();
    check_cast(DType::U16, DType::F16, u16s);
    let bools: DynArray = Array1::from(vec![false, true]).into_dyn().into();
    check_cast(DType::Bool, DType::F16, bools);
}

#[test]
fn jit_nextafter_steps_one_float16() {
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F16);
    let j = b.input(DType::F16);
    let x = b.push(Inst::Load { input: i }, DType::F16);
    let y = b.push(Inst::Load { input: j }, DType::F16);
    let z = b.push(
        Inst::Binary {
            op: BinaryOp::Nextafter,
            lhs: x,
            rhs: y,
        },
        DType::F16,
    );
    let k = b.finish(Output::Store { value: z });
    let specials: Vec<f16> = [
        0x0000u16, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x7c00,
        0xfc00, 0x7e00, 0x3555,
    ]
    .into_iter()
    .map(f16::from_bits)
    .collect();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for &a in &specials {
        for &c in &specials {
            xs.push(a);
            ys.push(c);
        }
    }
    let n = xs.len();
    let xa: DynArray = ArrayD::from_shape_vec(IxDyn(&[n]), xs.clone())
        .unwrap()
        .into();
    let ya: DynArray = ArrayD::from_shape_vec(IxDyn(&[n]), ys.clone())
        .unwrap()
        .into();
    let be = backend();
    let c = be.compile(&k).unwrap();
    let got = be.run(&c, &[xa.view(), ya.view()], &[n]).unwrap();
    for i in 0..n {
        let want = semantics::nextafter_f16(xs[i], ys[i]);
        let have = match at(&got, i) {
            Const::F16(v) => v,
            c => panic!("{c:?}"),
        };
        assert!(same(have, want), "nextafter({}, {})", xs[i], ys[i]);
    }
    // NumPy's values: nextafter(1, 2) is 1 + 2^-10; nextafter(0, -1) the smallest negative
    // subnormal; nextafter(inf, 0) the largest finite; toward itself: itself.
    let nx =
        |a: f32, b: f32| f16_to_f32(semantics::nextafter_f16(f16_from_f32(a), f16_from_f32(b)));
    assert_eq!(nx(1.0, 2.0), 1.0 + 1.0 / 1024.0);
    assert_eq!(nx(0.0, -1.0), -(2f32.powi(-24)));
    assert_eq!(nx(f32::INFINITY, 0.0), 65504.0);
    assert_eq!(nx(-2.0, -2.0), -2.0);
    assert_eq!(nx(-1.0, 0.0), -(1.0 - 1.0 / 2048.0));
}
