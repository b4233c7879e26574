//! The logarithms as kernel IR: `log`, `log2`, `log10` from one reduction, and `log1p` (see the
//! module docs of [`super`] for the algorithms and their bounds).
#![allow(clippy::excessive_precision, clippy::approx_constant)]
use super::Emit;
use crate::kir::Value;
use crate::ops::BinaryOp;

impl Emit<'_> {
    pub(super) fn log(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let (ln2_hi, ln2_lo) = if f64 {
            (6.93147180369123816490e-01, 1.90821492927058770002e-10)
        } else {
            (6.9313812256e-01, 9.0580006145e-06)
        };
        let LogParts { k, f, s, hfsq, r } = self.log_parts(x);
        // k ln2_hi - ((hfsq - (s (hfsq + R) + k ln2_lo)) - f)
        let hr = self.add(hfsq, r);
        let shr = self.mul(s, hr);
        let ll = self.c(ln2_lo);
        let kl = self.mul(k, ll);
        let a = self.add(shr, kl);
        let a = self.sub(hfsq, a);
        let a = self.sub(a, f);
        let lh = self.c(ln2_hi);
        let kh = self.mul(k, lh);
        let res = self.sub(kh, a);
        self.log_special(x, res)
    }

    /// `log2` (`base == 2`) or `log10`: the reduction of `log`, then `log(1+f)` split into a
    /// high part with a short mantissa and a low part so that multiplying by `1/ln(base)` (also
    /// split) loses nothing; `log2` of a power of two is exact.
    pub(super) fn log_base(&mut self, x: Value, base: u32) -> Value {
        let f64 = self.f64();
        let LogParts { k, f, s, hfsq, r } = self.log_parts(x);
        // hi = f - hfsq with the low mantissa bits cleared; lo = the rest, exactly.
        let hi0 = self.sub(f, hfsq);
        let hb = self.bits(hi0);
        let mask = self.ci(if f64 {
            -(1i64 << 32)
        } else {
            0xfffff000u32 as i32 as i64
        });
        let hb = self.bin(BinaryOp::And, hb, mask);
        let hi = self.float(hb);
        let hr = self.add(hfsq, r);
        let shr = self.mul(s, hr);
        let lo = self.sub(f, hi);
        let lo = self.sub(lo, hfsq);
        let lo = self.add(lo, shr);
        let lohi = self.add(lo, hi);
        let res = match (f64, base) {
            (true, 2) => {
                let (ivhi, ivlo) = (1.44269504072144627571e+00, 1.67517131648865118353e-10);
                let c_hi = self.c(ivhi);
                let c_lo = self.c(ivlo);
                let val_hi = self.mul(hi, c_hi);
                let a = self.mul(lohi, c_lo);
                let b = self.mul(lo, c_hi);
                let val_lo = self.add(a, b);
                // k + val_hi as a sum with its rounding error carried into val_lo.
                let w = self.add(k, val_hi);
                let d = self.sub(k, w);
                let d = self.add(d, val_hi);
                let val_lo = self.add(val_lo, d);
                self.add(val_lo, w)
            }
            (true, _) => {
                let (ivhi, ivlo) = (4.34294481878168880939e-01, 2.50829467116452752298e-11);
                let (l2hi, l2lo) = (3.01029995663611771306e-01, 3.69423907715893078616e-13);
                let c_hi = self.c(ivhi);
                let c_lo = self.c(ivlo);
                let c2hi = self.c(l2hi);
                let c2lo = self.c(l2lo);
                let val_hi = self.mul(hi, c_hi);
                let y2 = self.mul(k, c2hi);
                let a = self.mul(k, c2lo);
                let b = self.mul(lohi, c_lo);
                let c = self.mul(lo, c_hi);
                let val_lo = self.add(a, b);
                let val_lo = self.add(val_lo, c);
                let w = self.add(y2, val_hi);
                let d = self.sub(y2, w);
                let d = self.add(d, val_hi);
                let val_lo = self.add(val_lo, d);
                self.add(val_lo, w)
            }
            (false, 2) => {
                let (ivhi, ivlo) = (1.4428710938e+00, -1.7605285393e-04);
                let c_hi = self.c(ivhi);
                let c_lo = self.c(ivlo);
                let a = self.mul(lohi, c_lo);
                let b = self.mul(lo, c_hi);
                let c = self.mul(hi, c_hi);
                let t = self.add(a, b);
                let t = self.add(t, c);
                self.add(t, k)
            }
            (false, _) => {
                let (ivhi, ivlo) = (4.3432617188e-01, -3.1689971365e-05);
                let (l2hi, l2lo) = (3.0102920532e-01, 7.9034151668e-07);
                let c_hi = self.c(ivhi);
                let c_lo = self.c(ivlo);
                let c2hi = self.c(l2hi);
                let c2lo = self.c(l2lo);
                let a = self.mul(k, c2lo);
                let b = self.mul(lohi, c_lo);
                let c = self.mul(lo, c_hi);
                let d = self.mul(hi, c_hi);
                let e = self.mul(k, c2hi);
                let t = self.add(a, b);
                let t = self.add(t, c);
                let t = self.add(t, d);
                self.add(t, e)
            }
        };
        self.log_special(x, res)
    }

    /// The shared reduction of the logarithms: `x = 2^k (1 + f)` with `1 + f` in
    /// `[sqrt(2)/2, sqrt(2))`, `s = f / (2 + f)`, `hfsq = f^2 / 2` and the minimax `R(s^2)`.
    fn log_parts(&mut self, x: Value) -> LogParts {
        let f64 = self.f64();
        let (mbits, bias) = self.layout();
        // Subnormals: scale into the normal range first.
        let (min_normal, pre_bits) = if f64 {
            (f64::MIN_POSITIVE, 54)
        } else {
            (f32::MIN_POSITIVE as f64, 25)
        };
        let mn = self.c(min_normal);
        let is_sub = self.bin(BinaryOp::Lt, x, mn);
        let scale = self.c((1u64 << pre_bits) as f64);
        let xs0 = self.mul(x, scale);
        let xs = self.select(is_sub, xs0, x);
        let adj_sub = self.c(-(pre_bits as f64));
        let zero = self.c(0.0);
        let kadj = self.select(is_sub, adj_sub, zero);
        // Exponent and mantissa in [1, 2).
        let b = self.bits(xs);
        let sh = self.ci(mbits);
        let e = self.bin(BinaryOp::Shr, b, sh);
        let emask = self.ci((1 << (if f64 { 11 } else { 8 })) - 1);
        let e = self.bin(BinaryOp::And, e, emask);
        let ef = self.int_to_float(e);
        let mmask = self.ci((1i64 << mbits) - 1);
        let mb = self.bin(BinaryOp::And, b, mmask);
        let onebits = self.ci(bias << mbits);
        let mb = self.bin(BinaryOp::Or, mb, onebits);
        let m = self.float(mb);
        // Move m into [sqrt(2)/2, sqrt(2)).
        let sqrt2 = self.c(std::f64::consts::SQRT_2);
        let big = self.bin(BinaryOp::Gt, m, sqrt2);
        let half = self.c(0.5);
        let mh = self.mul(m, half);
        let m = self.select(big, mh, m);
        let one = self.c(1.0);
        let bump = self.select(big, one, zero);
        let biasc = self.c(bias as f64);
        let k = self.sub(ef, biasc);
        let k = self.add(k, kadj);
        let k = self.add(k, bump);
        let f = self.sub(m, one);
        let (s, hfsq, r) = self.log_poly(f);
        LogParts { k, f, s, hfsq, r }
    }

    /// `s = f / (2 + f)`, `hfsq = f^2 / 2` and `R(s^2)`, the minimax part of `log(1 + f)`.
    fn log_poly(&mut self, f: Value) -> (Value, Value, Value) {
        let two = self.c(2.0);
        let den = self.add(two, f);
        let s = self.div(f, den);
        let z = self.mul(s, s);
        let w = self.mul(z, z);
        let (odd, even): (&[f64], &[f64]) = if self.f64() {
            (
                &[
                    3.999999999940941908e-01,
                    2.222219843214978396e-01,
                    1.531383769920937332e-01,
                ],
                &[
                    6.666666666666735130e-01,
                    2.857142874366239149e-01,
                    1.818357216161805012e-01,
                    1.479819860511658591e-01,
                ],
            )
        } else {
            (
                &[0.40000972152, 0.24279078841],
                &[0.66666662693, 0.28498786688],
            )
        };
        let t1p = self.horner(w, odd);
        let t1 = self.mul(w, t1p);
        let t2p = self.horner(w, even);
        let t2 = self.mul(z, t2p);
        let r = self.add(t2, t1);
        let half = self.c(0.5);
        let ff = self.mul(f, f);
        let hfsq = self.mul(half, ff);
        (s, hfsq, r)
    }

    /// The logarithms' special values: 0 -> -inf, < 0 -> NaN, inf -> inf, NaN -> NaN.
    fn log_special(&mut self, x: Value, res: Value) -> Value {
        let zero = self.c(0.0);
        let ninf = self.c(f64::NEG_INFINITY);
        let pinf = self.c(f64::INFINITY);
        let nan = self.default_nan();
        let is_zero = self.bin(BinaryOp::Eq, x, zero);
        let res = self.select(is_zero, ninf, res);
        let is_neg = self.bin(BinaryOp::Lt, x, zero);
        let res = self.select(is_neg, nan, res);
        let is_inf = self.bin(BinaryOp::Eq, x, pinf);
        let res = self.select(is_inf, pinf, res);
        let is_nan = self.bin(BinaryOp::Ne, x, x);
        self.select(is_nan, x, res)
    }

    /// `log1p`: `u = 1 + x` reduced like `log`, with the rounding error of `1 + x` carried as
    /// the correction `c / u` (exact for small `x`: `log1p(x) = x` below 2^-53).
    pub(super) fn log1p(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let (ln2_hi, ln2_lo) = if f64 {
            (6.93147180369123816490e-01, 1.90821492927058770002e-10)
        } else {
            (6.9313812256e-01, 9.0580006145e-06)
        };
        let one = self.c(1.0);
        let u = self.add(one, x);
        let ub = self.bits(u);
        // Work on the high 32 bits of u (all of them for f32), as fdlibm does.
        let (hi_shift, top, mant_mask, kmax) = if f64 {
            (32i64, 0x3fe6a09ei64, 0x000fffffi64, 54.0)
        } else {
            (0, 0x3f3504f3, 0x007fffff, 25.0)
        };
        let hu = if f64 {
            let s32 = self.ci(hi_shift);
            self.bin(BinaryOp::Shr, ub, s32)
        } else {
            ub
        };
        let one_hi = if f64 { 0x3ff00000i64 } else { 0x3f800000 };
        let adj = self.ci(one_hi - top);
        let hu = self.add(hu, adj);
        let eshift = self.ci(if f64 { 20 } else { 23 });
        let ke = self.bin(BinaryOp::Shr, hu, eshift);
        let kef = self.int_to_float(ke);
        let bias = self.c(if f64 { 1023.0 } else { 127.0 });
        let k = self.sub(kef, bias);
        // c = (k >= 2 ? 1 - (u - x) : x - (u - 1)) / u, zero once 1 + x is exact (k >= kmax).
        let two = self.c(2.0);
        let big_k = self.bin(BinaryOp::Ge, k, two);
        let ux = self.sub(u, x);
        let c1 = self.sub(one, ux);
        let u1 = self.sub(u, one);
        let c2 = self.sub(x, u1);
        let c = self.select(big_k, c1, c2);
        let c = self.div(c, u);
        let zero = self.c(0.0);
        let kmaxc = self.c(kmax);
        let exact = self.bin(BinaryOp::Ge, k, kmaxc);
        let c = self.select(exact, zero, c);
        // 1 + f: the mantissa of u moved into [sqrt(2)/2, sqrt(2)).
        let mm = self.ci(mant_mask);
        let hm = self.bin(BinaryOp::And, hu, mm);
        let topc = self.ci(top);
        let hm = self.add(hm, topc);
        let fb = if f64 {
            let s32 = self.ci(32);
            let h = self.bin(BinaryOp::Shl, hm, s32);
            let lowmask = self.ci(0xffffffff);
            let low = self.bin(BinaryOp::And, ub, lowmask);
            self.bin(BinaryOp::Or, h, low)
        } else {
            hm
        };
        let m = self.float(fb);
        let f = self.sub(m, one);
        let (s, hfsq, r) = self.log_poly(f);
        // s (hfsq + R) + (k ln2_lo + c) - hfsq + f + k ln2_hi
        let hr = self.add(hfsq, r);
        let a = self.mul(s, hr);
        let ll = self.c(ln2_lo);
        let kl = self.mul(k, ll);
        let kc = self.add(kl, c);
        let a = self.add(a, kc);
        let a = self.sub(a, hfsq);
        let a = self.add(a, f);
        let lh = self.c(ln2_hi);
        let kh = self.mul(k, lh);
        let res = self.add(a, kh);
        // Special values: x = ±0 -> x, -1 -> -inf, < -1 -> NaN, inf -> inf, NaN -> NaN.
        let is_zero = self.bin(BinaryOp::Eq, x, zero);
        let res = self.select(is_zero, x, res);
        let m1 = self.c(-1.0);
        let ninf = self.c(f64::NEG_INFINITY);
        let pinf = self.c(f64::INFINITY);
        let nan = self.default_nan();
        let is_m1 = self.bin(BinaryOp::Eq, x, m1);
        let res = self.select(is_m1, ninf, res);
        let below = self.bin(BinaryOp::Lt, x, m1);
        let res = self.select(below, nan, res);
        let is_inf = self.bin(BinaryOp::Eq, x, pinf);
        let res = self.select(is_inf, pinf, res);
        let is_nan = self.bin(BinaryOp::Ne, x, x);
        self.select(is_nan, x, res)
    }
}

/// The pieces of `log(x)` the logarithms share (see [`Emit::log_parts`]).
struct LogParts {
    k: Value,
    f: Value,
    s: Value,
    hfsq: Value,
    r: Value,
}
