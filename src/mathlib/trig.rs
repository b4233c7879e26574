//! `sin`, `cos`, `tan` as kernel IR.
//!
//! Reduction: `x = n pi/2 + r` with `n = round(x 2/pi)` and `r` kept as a double-word
//! `hi + lo`, Cody-Waite style: pi/2 is split into parts whose products with `n` are exact
//! (f64: fdlibm's three 33-bit parts and a tail, for |n| < 2^20; f32: four 12-bit parts and a
//! tail, for |n| < 2^12), the first subtraction is exact (Sterbenz), the next two are TwoSums,
//! the tail is rounded, so `hi + lo` carries about 150 (f64) / 70 (f32) bits of pi/2: enough
//! for the worst cancellation below the limit. Above the limit (|x| >= 2^20 pi/2 for f64,
//! 2^12 pi/2 for f32), for infinities and for NaN the lanes take the scalar libm function
//! through [`crate::kir::Inst::Fallback`] (glibc reduces those with Payne-Hanek): kernel IR has
//! no tables for the bits of 2/pi, and the vector code pays one test per vector for it.
//!
//! Kernels on `hi + lo` (|hi| <= pi/4 + a rounding): fdlibm's `__kernel_sin`, `__kernel_cos`
//! and `__kernel_tan` (with its `pi/4 - x` transformation above 0.6744 and its accurate
//! `-1/tan`), the tail `lo` entering as first-order corrections; f32 uses musl's minimax
//! coefficients for `sinf`/`cosf` and fdlibm's `tan` coefficients rounded to f32. The quadrant
//! `n mod 4` picks the kernel and the sign by selects.
#![allow(clippy::excessive_precision)]
use super::Emit;
use crate::kir::Value;
use crate::ops::{BinaryOp, UnaryOp};

/// Which of the three functions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Trig {
    Sin,
    Cos,
    Tan,
}

impl Emit<'_> {
    /// |x| below this is reduced here; the rest (and inf, NaN) calls libm.
    fn trig_limit(&self) -> f64 {
        let (n, pio2) = if self.f64() {
            (1048576.0, 1.5707963267948966)
        } else {
            (4096.0, 1.5707963705062866)
        };
        (n - 1.0) * pio2
    }

    /// `x = n pi/2 + hi + lo` (see the module docs): `(n, hi, lo)`.
    fn rem_pio2(&mut self, x: Value) -> (Value, Value, Value) {
        let f64 = self.f64();
        let inv = self.c(std::f64::consts::FRAC_2_PI);
        let t = self.mul(x, inv);
        let n = self.unary(UnaryOp::Round, t);
        // Negated parts of pi/2: n * part is exact for |n| below the limit.
        let parts: &[f64] = if f64 {
            &[
                -1.57079632673412561417e+00,
                -6.07710050630396597660e-11,
                -2.02226624871116645580e-21,
                -8.47842766036889956997e-32,
            ]
        } else {
            &[
                -1.57080078125,
                4.453584551811218e-06,
                8.706138032721356e-10,
                -6.222800053024002e-14,
                -5.721188916458728e-18,
            ]
        };
        let pc: Vec<Value> = parts.iter().map(|p| self.c(*p)).collect();
        let w1 = self.mul(n, pc[0]);
        let y = self.add(x, w1);
        let w2 = self.mul(n, pc[1]);
        let (s, e) = self.two_sum(y, w2);
        let w3 = self.mul(n, pc[2]);
        let (s2, e2) = self.two_sum(s, w3);
        let mut tail = self.mul(n, pc[3]);
        if !f64 {
            let w5 = self.mul(n, pc[4]);
            tail = self.add(tail, w5);
        }
        let lo = self.add(e, e2);
        let lo = self.add(lo, tail);
        let (hi, lo) = self.fast_two_sum(s2, lo);
        (n, hi, lo)
    }

    /// `sin(hi + lo)` for |hi| <= pi/4 (fdlibm's `__kernel_sin` with its tail).
    fn kernel_sin(&mut self, hi: Value, lo: Value) -> Value {
        let s: &[f64] = if self.f64() {
            &[
                -1.66666666666666324348e-01,
                8.33333333332248946124e-03,
                -1.98412698298579493134e-04,
                2.75573137070700676789e-06,
                -2.50507602534068634195e-08,
                1.58969099521155010221e-10,
            ]
        } else {
            &[
                -0.166666666416265235595,
                0.0083333293858894631756,
                -0.000198393348360966317347,
                0.0000027183114939898219064,
            ]
        };
        let z = self.mul(hi, hi);
        let v = self.mul(z, hi);
        let r = self.horner(z, &s[1..]);
        // hi - ((z (lo/2 - v r) - lo) - v S1)
        let half = self.c(0.5);
        let hl = self.mul(half, lo);
        let vr = self.mul(v, r);
        let t = self.sub(hl, vr);
        let t = self.mul(z, t);
        let t = self.sub(t, lo);
        let s1 = self.c(s[0]);
        let vs = self.mul(v, s1);
        let t = self.sub(t, vs);
        self.sub(hi, t)
    }

    /// `cos(hi + lo)` for |hi| <= pi/4 (fdlibm's `__kernel_cos` with its tail).
    fn kernel_cos(&mut self, hi: Value, lo: Value) -> Value {
        let z = self.mul(hi, hi);
        let r = if self.f64() {
            let w = self.mul(z, z);
            let a = self.horner(
                z,
                &[
                    4.16666666666666019037e-02,
                    -1.38888888888741095749e-03,
                    2.48015872894767294178e-05,
                ],
            );
            let a = self.mul(z, a);
            let b = self.horner(
                z,
                &[
                    -2.75573143513906633035e-07,
                    2.08757232129817482790e-09,
                    -1.13596475577881948265e-11,
                ],
            );
            let ww = self.mul(w, w);
            let b = self.mul(ww, b);
            self.add(a, b)
        } else {
            let a = self.horner(
                z,
                &[
                    0.0416666233237390631894,
                    -0.00138867637746099294692,
                    0.0000243904487962774090654,
                ],
            );
            self.mul(z, a)
        };
        // w + (((1 - w) - hz) + (z r - hi lo)), w = 1 - hz
        let half = self.c(0.5);
        let hz = self.mul(half, z);
        let one = self.c(1.0);
        let w = self.sub(one, hz);
        let ow = self.sub(one, w);
        let owh = self.sub(ow, hz);
        let zr = self.mul(z, r);
        let hl = self.mul(hi, lo);
        let t = self.sub(zr, hl);
        let t = self.add(owh, t);
        self.add(w, t)
    }

    /// `tan(hi + lo)` (`odd`: `-1/tan(hi + lo)`) for |hi| <= pi/4: fdlibm's `__kernel_tan`.
    fn kernel_tan(&mut self, hi: Value, lo: Value, odd: Value) -> Value {
        let f64 = self.f64();
        let tc: [f64; 13] = [
            3.33333333333334091986e-01,
            1.33333333333201242699e-01,
            5.39682539762260521377e-02,
            2.18694882948595424599e-02,
            8.86323982359930005737e-03,
            3.59207910759131235356e-03,
            1.45620945432529025516e-03,
            5.88041240820264096874e-04,
            2.46463134818469906812e-04,
            7.81794442939557092300e-05,
            7.14072491382608190305e-05,
            -1.85586374855275456654e-05,
            2.59073051863633712884e-05,
        ];
        let (pio4, pio4lo) = if f64 {
            (7.85398163397448278999e-01, 3.06161699786838301793e-17)
        } else {
            (0.7853981852531433, -2.1855694143368964e-08)
        };
        let zero = self.c(0.0);
        let one = self.c(1.0);
        let two = self.c(2.0);
        let ahi = self.unary(UnaryOp::Abs, hi);
        let bigc = self.c(0.6743316650390625);
        let big = self.bin(BinaryOp::Ge, ahi, bigc);
        let neg = self.bin(BinaryOp::Lt, hi, zero);
        // Above 0.6744: tan(pi/4 - y) from x' = (pi/4 - |x|) + (pio4lo - lo sign(x)).
        let nlo = self.unary(UnaryOp::Neg, lo);
        let alo = self.select(neg, nlo, lo);
        let p4 = self.c(pio4);
        let p4l = self.c(pio4lo);
        let a = self.sub(p4, ahi);
        let b = self.sub(p4l, alo);
        let xb = self.add(a, b);
        let x = self.select(big, xb, hi);
        let y = self.select(big, zero, lo);
        let z = self.mul(x, x);
        let w = self.mul(z, z);
        let odd_c: Vec<f64> = (1..13).step_by(2).map(|i| tc[i]).collect();
        let even_c: Vec<f64> = (2..13).step_by(2).map(|i| tc[i]).collect();
        let r = self.horner(w, &odd_c);
        let v = self.horner(w, &even_c);
        let v = self.mul(z, v);
        let s = self.mul(z, x);
        // r = y + z (s (r + v) + y) + s T0
        let rv = self.add(r, v);
        let srv = self.mul(s, rv);
        let t = self.add(srv, y);
        let t = self.mul(z, t);
        let t = self.add(y, t);
        let t0 = self.c(tc[0]);
        let st = self.mul(s, t0);
        let r = self.add(t, st);
        let w = self.add(x, r);
        // Big: (1 - 2 odd) - 2 (x + (r - w^2 / (w + s))), with the sign of the input.
        let mone = self.c(-1.0);
        let sg = self.select(odd, mone, one);
        let ww = self.mul(w, w);
        let ws = self.add(w, sg);
        let q = self.div(ww, ws);
        let q = self.sub(r, q);
        let q = self.add(x, q);
        let q = self.mul(two, q);
        let vb = self.sub(sg, q);
        let nvb = self.unary(UnaryOp::Neg, vb);
        let vb = self.select(neg, nvb, vb);
        // Odd, small: -1/(x + r) from truncated parts, so that it is accurate.
        let w0 = self.trunc_mantissa(w);
        let w0x = self.sub(w0, x);
        let vv = self.sub(r, w0x);
        let a = self.div(mone, w);
        let a0 = self.trunc_mantissa(a);
        let aw = self.mul(a0, w0);
        let av = self.mul(a0, vv);
        let t = self.add(one, aw);
        let t = self.add(t, av);
        let t = self.mul(a, t);
        let inv = self.add(a0, t);
        let small = self.select(odd, inv, w);
        self.select(big, vb, small)
    }

    /// `sin`, `cos` or `tan` (see the module docs).
    pub(super) fn trig(&mut self, x: Value, f: Trig) -> Value {
        let f64 = self.f64();
        let (n, hi, lo) = self.rem_pio2(x);
        let q = self.mod4(n);
        let one = self.c(1.0);
        let two = self.c(2.0);
        let three = self.c(3.0);
        let is1 = self.bin(BinaryOp::Eq, q, one);
        let is3 = self.bin(BinaryOp::Eq, q, three);
        let odd = self.or(is1, is3);
        let res = match f {
            Trig::Sin | Trig::Cos => {
                let s = self.kernel_sin(hi, lo);
                let c = self.kernel_cos(hi, lo);
                // sin: q = 0..3 -> s, c, -s, -c; cos: c, -s, -c, s.
                let (a, b, neg) = if f == Trig::Sin {
                    (c, s, self.bin(BinaryOp::Ge, q, two))
                } else {
                    let is2 = self.bin(BinaryOp::Eq, q, two);
                    (s, c, self.or(is1, is2))
                };
                let r = self.select(odd, a, b);
                let nr = self.unary(UnaryOp::Neg, r);
                self.select(neg, nr, r)
            }
            Trig::Tan => self.kernel_tan(hi, lo, odd),
        };
        // Tiny |x|: sin and tan are x (which keeps -0 and subnormals exact).
        let ax = self.unary(UnaryOp::Abs, x);
        let res = if f == Trig::Cos {
            res
        } else {
            let tiny = self.c(if f64 { 2f64.powi(-27) } else { 2f64.powi(-12) });
            let is_tiny = self.bin(BinaryOp::Lt, ax, tiny);
            self.select(is_tiny, x, res)
        };
        // Large |x|, inf, NaN: libm (the comparison is false for NaN).
        let lim = self.c(self.trig_limit());
        let inside = self.bin(BinaryOp::Lt, ax, lim);
        let outside = self.not(inside);
        let op = match f {
            Trig::Sin => UnaryOp::Sin,
            Trig::Cos => UnaryOp::Cos,
            Trig::Tan => UnaryOp::Tan,
        };
        self.fallback_unary(outside, res, op, x)
    }
}
