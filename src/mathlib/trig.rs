//! `sin`, `cos`, `tan` as kernel IR.
//!
//! Reduction: `x = n pi/2 + r` with `n = round(x 2/pi)` and `r` kept as a double-word
//! `hi + lo`, Cody-Waite style: pi/2 is split into parts whose products with `n` are exact
//! (f64: fdlibm's three 33-bit parts and a tail, for |n| < 2^20; f32: four 12-bit parts and a
//! tail, for |n| < 2^12), the first subtraction is exact (Sterbenz), the next two are TwoSums,
//! the tail is rounded, so `hi + lo` carries about 150 (f64) / 70 (f32) bits of pi/2: enough
//! for the worst cancellation below the limit. Above the limit (|x| >= 2^20 pi/2 for f64,
//! 2^12 pi/2 for f32), for infinities and for NaN, a target with scalar calls (the CPU JIT)
//! takes the scalar libm function in those lanes through [`crate::kir::Inst::Fallback`]
//! (glibc reduces them with Payne-Hanek; the vector code pays one test per vector for it).
//!
//! A target without them (the GPU) reduces those lanes in the kernel, Payne-Hanek style, in
//! integer arithmetic ([`Emit::rem_pio2_large`]): `|x| = m 2^e` (`m` the integer significand),
//! and `|x| 2/pi mod 4` is `m` times a window of the digits of 2/pi starting at digit `e - 1`
//! (the digits before it only add multiples of 4), read from a table
//! ([`crate::kir::Table::TwoOverPi32`]: 192 digits for f64; `TwoOverPi16`: 96 for f32) as 6
//! words, cut into 8 limbs of 24 (f32: 12) bits so that the product's columns fit the integer
//! type (int64; f32: int32, so that the float32 functions need no 64-bit integers). The low
//! 192 (96) bits of the product hold the quadrant in their top 2 bits and the fraction below;
//! a fraction of 1/2 or more rounds the quadrant up and is negated in integers (one's
//! complement, an error of one unit in the last of its 142 (70) bits kept), so no
//! cancellation happens in floating point, even for the arguments closest to a multiple of
//! pi/2 (within ~2^-61 relative for f64). The limbs become floats exactly, their sum a
//! double-word `hi + lo` and its product with pi/2 (Dekker) the reduced argument. Infinities
//! give glibc's NaN (sign bit set), a NaN passes through. Every lane computes both reductions
//! (no branches) and selects.
//!
//! Kernels on `hi + lo` (|hi| <= pi/4 + a rounding): fdlibm's `__kernel_sin`, `__kernel_cos`
//! and `__kernel_tan` (with its `pi/4 - x` transformation above 0.6744 and its accurate
//! `-1/tan`), the tail `lo` entering as first-order corrections; f32 uses musl's minimax
//! coefficients for `sinf`/`cosf` and fdlibm's `tan` coefficients rounded to f32. The quadrant
//! `n mod 4` picks the kernel and the sign by selects.
#![allow(clippy::excessive_precision)]
use super::Emit;
use crate::kir::{Inst, Table, Value};
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

    /// `x = n pi/2 + hi + lo` for finite |x| of any size, by Payne-Hanek (see the module
    /// docs): `(n, hi, lo)` with `n` in `-4..=4` and |hi| <= pi/4 (plus a rounding). Finite
    /// garbage for infinities and NaN.
    pub(super) fn rem_pio2_large(&mut self, x: Value) -> (Value, Value, Value) {
        let f64 = self.f64();
        // Word width of the table, limb width (3/4 of a word), zero digits before 2/pi's.
        let (table, word, limb, pad): (Table, i64, i64, i64) = if f64 {
            (Table::TwoOverPi32, 32, 24, 64)
        } else {
            (Table::TwoOverPi16, 16, 12, 16)
        };
        let (mbits, bias) = self.layout();
        let ax = self.unary(UnaryOp::Abs, x);
        let bits = self.bits(ax);
        // |x| = m 2^e.
        let sh = self.ci(mbits);
        let be = self.bin(BinaryOp::Shr, bits, sh);
        let eoff = self.ci(bias + mbits);
        let e = self.sub(be, eoff);
        let mmask = self.ci((1i64 << mbits) - 1);
        let frac = self.bin(BinaryOp::And, bits, mmask);
        let implicit = self.ci(1i64 << mbits);
        let m = self.bin(BinaryOp::Or, frac, implicit);
        let lmask = self.ci((1i64 << limb) - 1);
        let m0 = self.bin(BinaryOp::And, m, lmask);
        let lsh = self.ci(limb);
        let m1 = self.bin(BinaryOp::Shr, m, lsh);
        // The window: table bit q0 is digit e - 1 of 2/pi.
        let q0off = self.ci(pad - 2);
        let q0 = self.add(e, q0off);
        let wlog = self.ci(word.trailing_zeros() as i64);
        let b = self.bin(BinaryOp::Shr, q0, wlog);
        let wm1 = self.ci(word - 1);
        let s = self.bin(BinaryOp::And, q0, wm1);
        let wc = self.ci(word);
        let rs = self.sub(wc, s);
        let wmask = self.ci((1i64 << word) - 1);
        // T[b], ..., T[b + 6] (the index type is the float's integer type).
        let t: Vec<Value> = (0..7)
            .map(|k| {
                let kc = self.ci(k);
                let i = self.add(b, kc);
                self.b.push(Inst::Lookup { table, index: i }, self.it)
            })
            .collect();
        // Words u[0] (least significant) .. u[5] of the window.
        let u: Vec<Value> = (0..6)
            .map(|i| {
                let hi = self.bin(BinaryOp::Shl, t[5 - i], wc);
                let pair = self.bin(BinaryOp::Or, hi, t[6 - i]);
                let v = self.bin(BinaryOp::Shr, pair, rs);
                self.bin(BinaryOp::And, v, wmask)
            })
            .collect();
        // Limbs l[0] .. l[7]: bits [limb k, limb (k + 1)) of the window.
        let l: Vec<Value> = (0..8)
            .map(|k| {
                let start = limb * k;
                let (j, off) = ((start / word) as usize, start % word);
                let offc = self.ci(off);
                let low = self.bin(BinaryOp::Shr, u[j], offc);
                let v = if off + limb > word {
                    let up = self.ci(word - off);
                    let high = self.bin(BinaryOp::Shl, u[j + 1], up);
                    self.bin(BinaryOp::Or, low, high)
                } else {
                    low
                };
                self.bin(BinaryOp::And, v, lmask)
            })
            .collect();
        // The low 8 limbs of m * window, column by column.
        let mut p = Vec::with_capacity(8);
        let mut carry = self.ci(0);
        for c in 0..8 {
            let a = self.mul(m0, l[c]);
            let mut col = self.add(carry, a);
            if c > 0 {
                let b2 = self.mul(m1, l[c - 1]);
                col = self.add(col, b2);
            }
            p.push(self.bin(BinaryOp::And, col, lmask));
            carry = self.bin(BinaryOp::Shr, col, lsh);
        }
        // Quadrant (top 2 bits) and the rounding bit below it.
        let qsh = self.ci(limb - 2);
        let quad = self.bin(BinaryOp::Shr, p[7], qsh);
        let rsh = self.ci(limb - 3);
        let rb = self.bin(BinaryOp::Shr, p[7], rsh);
        let one_i = self.ci(1);
        let round = self.bin(BinaryOp::And, rb, one_i);
        let up = self.bin(BinaryOp::Eq, round, one_i);
        let quad = self.add(quad, round);
        // The fraction's limbs, top first, negated (one's complement) when rounding up.
        let mut g = Vec::with_capacity(6);
        for k in (2..8).rev() {
            let mask = if k == 7 {
                self.ci((1i64 << (limb - 2)) - 1)
            } else {
                lmask
            };
            let v = self.bin(BinaryOp::And, p[k], mask);
            let nv = self.bin(BinaryOp::Xor, v, mask);
            g.push(self.select(up, nv, v));
        }
        // f = sum of g[i] 2^-(limb - 2 + limb i), as a double-word hi + lo.
        let mut terms = Vec::with_capacity(6);
        for (i, gi) in g.iter().enumerate() {
            let v = self.int_to_float(*gi);
            let sc = self.c(2f64.powi(-((limb - 2 + limb * i as i64) as i32)));
            terms.push(self.mul(v, sc));
        }
        let mut hi = terms[0];
        let mut lo = self.c(0.0);
        for &t in &terms[1..] {
            let (s2, e2) = self.two_sum(hi, t);
            hi = s2;
            lo = self.add(lo, e2);
        }
        let (hi, lo) = self.fast_two_sum(hi, lo);
        // r = f pi/2.
        let (p1, p2) = if f64 {
            (1.5707963267948966, 6.123233995736766e-17)
        } else {
            (1.5707963705062866, -4.371139000186241e-08)
        };
        let p1c = self.c(p1);
        let p2c = self.c(p2);
        let (ph, pe) = self.two_prod(hi, p1c);
        let a = self.mul(hi, p2c);
        let b2 = self.mul(lo, p1c);
        let t2 = self.add(a, b2);
        let t2 = self.add(pe, t2);
        let (rh, rl) = self.fast_two_sum(ph, t2);
        // Rounded up: the reduced argument is f - 1 = -(the negated fraction). Then the sign
        // of x.
        let n = self.int_to_float(quad);
        let zero = self.c(0.0);
        let neg = self.bin(BinaryOp::Lt, x, zero);
        let flip = self.bin(BinaryOp::Ne, neg, up);
        let nn = self.unary(UnaryOp::Neg, n);
        let nrh = self.unary(UnaryOp::Neg, rh);
        let nrl = self.unary(UnaryOp::Neg, rl);
        (
            self.select(neg, nn, n),
            self.select(flip, nrh, rh),
            self.select(flip, nrl, rl),
        )
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
        // Without scalar calls: Payne-Hanek beyond the Cody-Waite limit.
        let (n, hi, lo) = if self.target.fallback {
            (n, hi, lo)
        } else {
            let (n1, hi1, lo1) = self.rem_pio2_large(x);
            let ax = self.unary(UnaryOp::Abs, x);
            let lim = self.c(self.trig_limit());
            let inside = self.bin(BinaryOp::Lt, ax, lim);
            (
                self.select(inside, n, n1),
                self.select(inside, hi, hi1),
                self.select(inside, lo, lo1),
            )
        };
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
        if !self.target.fallback {
            // Infinities: glibc's NaN (sign bit set); NaN passes through.
            let inf = self.c(f64::INFINITY);
            let is_inf = self.bin(BinaryOp::Eq, ax, inf);
            let nan = self.default_nan();
            let res = self.select(is_inf, nan, res);
            let is_nan = self.is_nan(x);
            return self.select(is_nan, x, res);
        }
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
