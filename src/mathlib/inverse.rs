//! The inverse trigonometric and hyperbolic functions and `hypot` as kernel IR.
//!
//! - `arcsin`, `arccos`: fdlibm's algorithms (f32: musl's shorter rational): one rational
//!   `R(z)` evaluated at `z = x^2` below |x| = 0.5 and at `z = (1 - |x|)/2` above (where
//!   `asin(x) = pi/2 - 2 asin(sqrt(z))`), the square root split into a 21-bit (f32: 12-bit)
//!   head and an exact correction `c = (z - f^2)/(s + f)` so that the sum keeps its low bits.
//!   Invalid arguments give glibc's positive NaN.
//! - `arctan2`: `atan(|y| / |x|)` (the existing `arctan` expansion), then fdlibm's quadrant
//!   fix-ups with pi in two parts; beyond |y/x| = 2^60 (f32: 2^26) exactly pi/2; the zero and
//!   infinite cases by selects;
//!   NaN operands give glibc's NaN (the NaN `x` if it is one, else `y`).
//! - `arcsinh`, `arccosh`, `arctanh`: fdlibm's formulas, each written as one `log1p` (the
//!   existing expansion): `log(v)` for `v >= 3` is `log1p(v - 1)`, and `v - 1` is exact there;
//!   beyond 2^28 (f32: 2^12) `log(|x|) + ln 2`. `arccosh` below 1 and `arctanh` beyond 1 give
//!   x86's default NaN, as glibc does.
//! - `hypot`: both operands scaled by one power of two (exact) when the larger is huge or
//!   tiny, `a^2 + b^2` from exact products (Dekker) and TwoSum, then a square root with one
//!   Newton correction on the exact residual: within about half an ULP before the scale is
//!   undone. `hypot(±inf, NaN)` is inf (C99).
#![allow(clippy::excessive_precision)]
use super::Emit;
use crate::kir::Value;
use crate::ops::{BinaryOp, UnaryOp};

impl Emit<'_> {
    /// `pi/2` in two parts (the head rounded to the type; f32: fdlibm's split).
    fn pio2_parts(&self) -> (f64, f64) {
        if self.f64() {
            (1.57079632679489655800e+00, 6.12323399573676603587e-17)
        } else {
            (1.5707962513e+00, 7.5497894159e-08)
        }
    }

    /// fdlibm's `R(z)`: `(asin(sqrt z) - sqrt z) / sqrt z` as a rational in `z`.
    fn asin_r(&mut self, z: Value) -> Value {
        let (p, q): (&[f64], &[f64]) = if self.f64() {
            (
                &[
                    1.66666666666666657415e-01,
                    -3.25565818622400915405e-01,
                    2.01212532134862925881e-01,
                    -4.00555345006794114027e-02,
                    7.91534994289814532176e-04,
                    3.47933107596021167570e-05,
                ],
                &[
                    1.0,
                    -2.40339491173441421878e+00,
                    2.02094576023350569471e+00,
                    -6.88283971605453293030e-01,
                    7.70381505559019352791e-02,
                ],
            )
        } else {
            (
                &[1.6666586697e-01, -4.2743422091e-02, -8.6563630030e-03],
                &[1.0, -7.0662963390e-01],
            )
        };
        let pz = self.horner(z, p);
        let pz = self.mul(z, pz);
        let qz = self.horner(z, q);
        self.div(pz, qz)
    }

    /// `arcsin` (`acos == false`) or `arccos` (see the module docs).
    pub(super) fn asin_acos(&mut self, x: Value, acos: bool) -> Value {
        let f64 = self.f64();
        let (pio2_hi, pio2_lo) = self.pio2_parts();
        let a = self.unary(UnaryOp::Abs, x);
        let one = self.c(1.0);
        let half = self.c(0.5);
        let two = self.c(2.0);
        let hic = self.c(pio2_hi);
        let loc = self.c(pio2_lo);
        // One rational: at x^2 below 0.5, at (1 - |x|)/2 above.
        let small = self.bin(BinaryOp::Lt, a, half);
        let xx = self.mul(x, x);
        let oma = self.sub(one, a);
        let zl = self.mul(oma, half);
        let z = self.select(small, xx, zl);
        let r = self.asin_r(z);
        let s = self.unary(UnaryOp::Sqrt, z);
        // sqrt(z) = f + c exactly enough: f has a short mantissa, c the rest.
        let f = self.trunc_mantissa(s);
        let ff = self.mul(f, f);
        let zf = self.sub(z, ff);
        let sf = self.add(s, f);
        let c = self.div(zf, sf);
        let res = if !acos {
            // |x| < 0.5: x + x R(x^2).
            let xr = self.mul(x, r);
            let res_s = self.add(x, xr);
            // |x| >= 0.975: pi/2 - (2 (s + s r) - pio2_lo).
            let sr = self.mul(s, r);
            let t = self.add(s, sr);
            let t = self.mul(two, t);
            let t = self.sub(t, loc);
            let res_1 = self.sub(hic, t);
            // Else: pi/4 - (2 s r - (pio2_lo - 2 c) - (pi/4 - 2 f)).
            let p4 = self.c(pio2_hi * 0.5);
            let tsr = self.mul(two, sr);
            let c2 = self.mul(two, c);
            let lc = self.sub(loc, c2);
            let p = self.sub(tsr, lc);
            let f2 = self.mul(two, f);
            let q = self.sub(p4, f2);
            let pq = self.sub(p, q);
            let res_2 = self.sub(p4, pq);
            let b975 = self.c(0.975);
            let near1 = self.bin(BinaryOp::Ge, a, b975);
            let res_l = self.select(near1, res_1, res_2);
            let res_l = self.bin(BinaryOp::Copysign, res_l, x);
            let res = self.select(small, res_s, res_l);
            let tiny = self.c(if f64 { 2f64.powi(-26) } else { 2f64.powi(-12) });
            let is_tiny = self.bin(BinaryOp::Lt, a, tiny);
            let res = self.select(is_tiny, x, res);
            // |x| == 1: x pi/2 (in two parts).
            let xh = self.mul(x, hic);
            let xl = self.mul(x, loc);
            let at1 = self.add(xh, xl);
            let is1 = self.bin(BinaryOp::Eq, a, one);
            self.select(is1, at1, res)
        } else {
            // |x| < 0.5: pi/2 - (x - (pio2_lo - x R(x^2))).
            let xr = self.mul(x, r);
            let t = self.sub(loc, xr);
            let t = self.sub(x, t);
            let res_s = self.sub(hic, t);
            // x <= -0.5: 2 (pi/2 - (s + (R s - pio2_lo))).
            let rs = self.mul(r, s);
            let w = self.sub(rs, loc);
            let t = self.add(s, w);
            let t = self.sub(hic, t);
            let res_n = self.mul(two, t);
            // x >= 0.5: 2 (f + (R s + c)).
            let w = self.add(rs, c);
            let t = self.add(f, w);
            let res_p = self.mul(two, t);
            let zero = self.c(0.0);
            let neg = self.bin(BinaryOp::Lt, x, zero);
            let res_l = self.select(neg, res_n, res_p);
            let res = self.select(small, res_s, res_l);
            // acos(1) = 0 (the formula divides 0 by 0); acos(-1) = pi comes out of it.
            let is1 = self.bin(BinaryOp::Eq, x, one);
            self.select(is1, zero, res)
        };
        // |x| > 1: glibc's invalid result is a positive NaN; NaN stays NaN.
        let nan = self.c(f64::NAN);
        let over = self.bin(BinaryOp::Gt, a, one);
        let res = self.select(over, nan, res);
        let is_nan = self.is_nan(x);
        self.select(is_nan, x, res)
    }

    /// `arctan2(y, x)` (NumPy's argument order: the angle of the point `(x, y)`).
    pub(super) fn atan2(&mut self, y: Value, x: Value) -> Value {
        // pi rounded to nearest, and the rest (f32: fdlibm's split).
        let (pi_hi, pi_lo) = if self.f64() {
            (3.1415926535897931160e+00, 1.2246467991473531772e-16)
        } else {
            (3.1415927410e+00, -8.7422776573e-08)
        };
        let zero = self.c(0.0);
        let ax = self.unary(UnaryOp::Abs, x);
        let ay = self.unary(UnaryOp::Abs, y);
        let t = self.div(ay, ax);
        let z = self.atan(t);
        // Quadrants: x < 0 (sign bit, so -0 counts) gives pi - z, y < 0 the negation.
        let one_c = self.c(1.0);
        let sx = self.bin(BinaryOp::Copysign, one_c, x);
        let xneg = self.bin(BinaryOp::Lt, sx, zero);
        let pih = self.c(pi_hi);
        let pil = self.c(pi_lo);
        let zl = self.sub(z, pil);
        let left = self.sub(pih, zl);
        let r = self.select(xneg, left, z);
        // |y/x| beyond 2^60 (f32: 2^26): pi/2, whatever the sign of x (fdlibm's k > 60).
        let pio2 = self.c(std::f64::consts::FRAC_PI_2);
        let steep = self.c(if self.f64() {
            2f64.powi(60)
        } else {
            2f64.powi(26)
        });
        let is_steep = self.bin(BinaryOp::Gt, t, steep);
        let r = self.select(is_steep, pio2, r);
        // y == 0: 0 (x > 0) or pi (x < 0); x == 0 (y != 0): pi/2.
        let y0 = self.bin(BinaryOp::Eq, y, zero);
        let at_y0 = self.select(xneg, pih, zero);
        let x0 = self.bin(BinaryOp::Eq, x, zero);
        let r = self.select(x0, pio2, r);
        let r = self.select(y0, at_y0, r);
        // Infinities: x = inf: 0 or pi, or pi/4, 3pi/4 with y infinite; y = inf: pi/2.
        let inf = self.c(f64::INFINITY);
        let xinf = self.bin(BinaryOp::Eq, ax, inf);
        let yinf = self.bin(BinaryOp::Eq, ay, inf);
        let p4 = self.c(std::f64::consts::FRAC_PI_4);
        let p34 = self.c(3.0 * std::f64::consts::FRAC_PI_4);
        let both = self.select(xneg, p34, p4);
        let at_xinf = self.select(yinf, both, at_y0);
        let r = self.select(yinf, pio2, r);
        let r = self.select(xinf, at_xinf, r);
        let r = self.bin(BinaryOp::Copysign, r, y);
        // NaN: x's if it is one, else y's.
        let xnan = self.is_nan(x);
        let ynan = self.is_nan(y);
        let r = self.select(ynan, y, r);
        self.select(xnan, x, r)
    }

    /// `arcsinh` (see the module docs).
    pub(super) fn asinh(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let a = self.unary(UnaryOp::Abs, x);
        let one = self.c(1.0);
        let two = self.c(2.0);
        let big_lim = if f64 { 2f64.powi(28) } else { 2f64.powi(12) };
        let xx = self.mul(x, x);
        let xx1 = self.add(xx, one);
        let sq = self.unary(UnaryOp::Sqrt, xx1);
        // |x| <= 2: |x| + x^2 / (1 + sqrt(1 + x^2)).
        let d = self.add(one, sq);
        let q = self.div(xx, d);
        let u_s = self.add(a, q);
        // 2 < |x| < big: 2|x| + 1/(sqrt(x^2 + 1) + |x|), minus 1 (exact).
        let d = self.add(sq, a);
        let q = self.div(one, d);
        let a2 = self.mul(two, a);
        let v = self.add(a2, q);
        let u_m = self.sub(v, one);
        // big: log(|x|) + ln 2, the log as log1p(|x| - 1).
        let u_b = self.sub(a, one);
        let le2 = self.bin(BinaryOp::Le, a, two);
        let bigc = self.c(big_lim);
        let big = self.bin(BinaryOp::Ge, a, bigc);
        let u = self.select(le2, u_s, u_m);
        let u = self.select(big, u_b, u);
        let l = self.log1p(u);
        let ln2 = self.c(super::LN_2);
        let lb = self.add(l, ln2);
        let r = self.select(big, lb, l);
        let tiny = self.c(if f64 { 2f64.powi(-28) } else { 2f64.powi(-12) });
        let is_tiny = self.bin(BinaryOp::Lt, a, tiny);
        let r = self.select(is_tiny, a, r);
        let r = self.bin(BinaryOp::Copysign, r, x);
        let is_nan = self.is_nan(x);
        self.select(is_nan, x, r)
    }

    /// `arccosh` (see the module docs).
    pub(super) fn acosh(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let one = self.c(1.0);
        let two = self.c(2.0);
        let big_lim = if f64 { 2f64.powi(28) } else { 2f64.powi(12) };
        // 1 <= x <= 2: t + sqrt(2t + t^2), t = x - 1 (exact).
        let t = self.sub(x, one);
        let t2 = self.mul(two, t);
        let tt = self.mul(t, t);
        let s = self.add(t2, tt);
        let s = self.unary(UnaryOp::Sqrt, s);
        let u_s = self.add(t, s);
        // 2 < x < big: 2x - 1/(x + sqrt(x^2 - 1)), minus 1 (exact).
        let xx = self.mul(x, x);
        let xm = self.sub(xx, one);
        let sq = self.unary(UnaryOp::Sqrt, xm);
        let d = self.add(x, sq);
        let q = self.div(one, d);
        let x2 = self.mul(two, x);
        let v = self.sub(x2, q);
        let u_m = self.sub(v, one);
        let le2 = self.bin(BinaryOp::Le, x, two);
        let bigc = self.c(big_lim);
        let big = self.bin(BinaryOp::Ge, x, bigc);
        let u = self.select(le2, u_s, u_m);
        // big: log(x) + ln 2 with log(x) = log1p(x - 1).
        let u = self.select(big, t, u);
        let l = self.log1p(u);
        let ln2 = self.c(super::LN_2);
        let lb = self.add(l, ln2);
        let r = self.select(big, lb, l);
        let nan = self.default_nan();
        let below = self.bin(BinaryOp::Lt, x, one);
        let r = self.select(below, nan, r);
        let is_nan = self.is_nan(x);
        self.select(is_nan, x, r)
    }

    /// `arctanh` (see the module docs).
    pub(super) fn atanh(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let a = self.unary(UnaryOp::Abs, x);
        let one = self.c(1.0);
        let half = self.c(0.5);
        let oma = self.sub(one, a);
        let a2 = self.add(a, a);
        // |x| < 0.5: 2|x| + 2|x| |x| / (1 - |x|); above: 2|x| / (1 - |x|).
        let ta = self.mul(a2, a);
        let q = self.div(ta, oma);
        let u_s = self.add(a2, q);
        let u_l = self.div(a2, oma);
        let small = self.bin(BinaryOp::Lt, a, half);
        let u = self.select(small, u_s, u_l);
        let l = self.log1p(u);
        let r = self.mul(half, l);
        let tiny = self.c(if f64 { 2f64.powi(-28) } else { 2f64.powi(-12) });
        let is_tiny = self.bin(BinaryOp::Lt, a, tiny);
        let r = self.select(is_tiny, a, r);
        // |x| == 1: inf; |x| > 1: x86's default NaN (glibc's (x - x) / (x - x)).
        let inf = self.c(f64::INFINITY);
        let is1 = self.bin(BinaryOp::Eq, a, one);
        let r = self.select(is1, inf, r);
        let r = self.bin(BinaryOp::Copysign, r, x);
        let nan = self.default_nan();
        let over = self.bin(BinaryOp::Gt, a, one);
        let r = self.select(over, nan, r);
        let is_nan = self.is_nan(x);
        self.select(is_nan, x, r)
    }

    /// `hypot(x, y)` (see the module docs).
    pub(super) fn hypot(&mut self, x: Value, y: Value) -> Value {
        let f64 = self.f64();
        let (hi_lim, lo_lim, down, up) = if f64 {
            (
                2f64.powi(500),
                2f64.powi(-500),
                2f64.powi(-600),
                2f64.powi(600),
            )
        } else {
            (2f64.powi(60), 2f64.powi(-60), 2f64.powi(-90), 2f64.powi(90))
        };
        let zero = self.c(0.0);
        let one = self.c(1.0);
        let half = self.c(0.5);
        let ax = self.unary(UnaryOp::Abs, x);
        let ay = self.unary(UnaryOp::Abs, y);
        let xbig = self.bin(BinaryOp::Ge, ax, ay);
        let big = self.select(xbig, ax, ay);
        let small = self.select(xbig, ay, ax);
        // One exact scale for both, undone at the end.
        let hic = self.c(hi_lim);
        let loc = self.c(lo_lim);
        let dc = self.c(down);
        let uc = self.c(up);
        let huge = self.bin(BinaryOp::Gt, big, hic);
        let tiny = self.bin(BinaryOp::Lt, big, loc);
        let s = self.select(tiny, uc, one);
        let s = self.select(huge, dc, s);
        let inv = self.select(tiny, dc, one);
        let inv = self.select(huge, uc, inv);
        let b = self.mul(big, s);
        let a = self.mul(small, s);
        // b^2 + a^2 = h + l, from exact squares.
        let (bh, bl) = self.two_prod(b, b);
        let (ah, al) = self.two_prod(a, a);
        let (h, e) = self.fast_two_sum(bh, ah);
        let l = self.add(bl, al);
        let l = self.add(e, l);
        // r = sqrt(h + l): r0 + (h + l - r0^2) / (2 r0), r0^2 exact.
        let r0 = self.unary(UnaryOp::Sqrt, h);
        let (ph, pl) = self.two_prod(r0, r0);
        let d = self.sub(h, ph);
        let d = self.sub(d, pl);
        let d = self.add(d, l);
        let d = self.mul(d, half);
        let corr = self.div(d, r0);
        let r = self.add(r0, corr);
        let r = self.mul(r, inv);
        // Zero: 0 (the correction divides by zero); infinities win over NaN.
        let is0 = self.bin(BinaryOp::Eq, big, zero);
        let r = self.select(is0, zero, r);
        let xnan = self.is_nan(x);
        let ynan = self.is_nan(y);
        let r = self.select(ynan, y, r);
        let r = self.select(xnan, x, r);
        let inf = self.c(f64::INFINITY);
        let xinf = self.bin(BinaryOp::Eq, ax, inf);
        let yinf = self.bin(BinaryOp::Eq, ay, inf);
        let any_inf = self.or(xinf, yinf);
        self.select(any_inf, inf, r)
    }
}
