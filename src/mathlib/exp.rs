//! `exp` (its three algorithms: table and FMA, FMA, plain operations), `expm1`, and the
//! hyperbolic functions built on them (`tanh`, `sinh`, `cosh`) as kernel IR (see the module docs
//! of [`super`] for the algorithms and their bounds).
#![allow(clippy::excessive_precision, clippy::approx_constant)]
use super::{Emit, LN_2};
use crate::dtype::DType;
use crate::kir::{Inst, Value};
use crate::ops::{BinaryOp, UnaryOp};

impl Emit<'_> {
    /// `exp` with fused multiply-adds, for the lanes with `|x| <= 708` (f32: 86), where `e^x`
    /// is a normal number; libm computes the other lanes (overflow, subnormal and zero results,
    /// infinities, NaN) through [`Inst::Fallback`].
    /// - `k = round(x log2(e))` as `t = fma(x, log2(e), 1.5 * 2^52) - 1.5 * 2^52`: the sum's
    ///   low mantissa bits hold `k` (no rounding instruction);
    /// - `r = x - k ln2_hi - k ln2_lo` by two fma (`k ln2_hi` is exact, the first difference
    ///   too), and the rounding error `re` of the second, exactly, by a third;
    /// - `e^r = 1 + r + r^2 q(r)`, `q` of degree 9 (f32: 4) fitted to `(e^r - 1 - r)/r^2` on
    ///   `[-ln2/2, ln2/2]` (Chebyshev, 0.15 units of the last place of the result), in
    ///   Estrin's form; `1 + r` is added as a sum and its exact error (Fast2Sum), so the only rounding
    ///   of the result's size is the last one;
    /// - `* 2^k`: `k << 52` (the low bits of `t` shifted into the exponent field) added to the
    ///   result's bits as an integer.
    pub(super) fn exp_fma(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let (ln2_hi, ln2_lo, log2e, limit): (f64, f64, f64, f64) = if f64 {
            (
                6.93147180369123816490e-01,
                1.90821492927058770002e-10,
                std::f64::consts::LOG2_E,
                708.0,
            )
        } else {
            (6.9314575195e-01, 1.4286067653e-06, 1.4426950216e+00, 86.0)
        };
        // q(r) = c2 + c3 r + ...: `(e^r - 1 - r) / r^2` on [-ln2/2, ln2/2], Chebyshev-fitted
        // in 50-digit arithmetic (mpmath's chebyfit) and rounded to the float type.
        let q: &[f64] = if f64 {
            &[
                0.5000000000000001,
                0.16666666666666669,
                0.041666666666624164,
                0.008333333333330065,
                0.0013888888917196881,
                0.0001984126986304067,
                2.4801521322116825e-05,
                2.7557268480116333e-06,
                2.762007599981065e-07,
                2.5100375924709717e-08,
            ]
        } else {
            &[
                0.5,
                0.16666577756404877,
                0.041666556149721146,
                0.008363173343241215,
                0.0013926175888627768,
            ]
        };
        let (mbits, _) = self.layout();
        let magic = self.c(self.magic());
        let l2e = self.c(log2e);
        let t = self.fma(x, l2e, magic);
        let k = self.sub(t, magic);
        let nlh = self.c(-ln2_hi);
        let nll = self.c(-ln2_lo);
        let rh = self.fma(k, nlh, x);
        let r = self.fma(k, nll, rh);
        let d = self.sub(rh, r);
        let re = self.fma(k, nll, d);
        // e^r = (1 + r) + r^2 q(r), with re and the error of 1 + r in the small part.
        let z = self.mul(r, r);
        let qr = self.estrin_fma(r, z, q);
        let p = self.fma(z, qr, re);
        let one = self.c(1.0);
        let s = self.add(r, one);
        let e = self.sub(one, s);
        let e = self.add(e, r);
        let lo = self.add(e, p);
        let y = self.add(s, lo);
        // y * 2^k: k's low bits, shifted into the exponent field, added to y's bits.
        let tb = self.bits(t);
        let sh = self.ci(mbits);
        let kb = self.bin(BinaryOp::Shl, tb, sh);
        let yb = self.bits(y);
        let rb = self.add(yb, kb);
        let res = self.float(rb);
        // |x| > limit, inf and NaN compared as bits: NaN's are above every finite value's.
        let xb = self.bits(x);
        let (abs_mask, lim) = if f64 {
            (i64::MAX, limit.to_bits() as i64)
        } else {
            (i32::MAX as i64, (limit as f32).to_bits() as i64)
        };
        let am = self.ci(abs_mask);
        let ax = self.bin(BinaryOp::And, xb, am);
        let lc = self.ci(lim);
        let rare = self.bin(BinaryOp::Gt, ax, lc);
        self.fallback_unary(rare, res, UnaryOp::Exp, x)
    }

    /// Float64 `exp` from a table of `2^(j/128)` and fused multiply-adds, for the lanes with
    /// `|x| <= 708`; libm computes the others (as [`Emit::exp_fma`]).
    /// - `m = round(x 128/ln2)` as `t = fma(x, 128/ln2, 1.5 * 2^52) - 1.5 * 2^52` (the sum's
    ///   low bits hold `m`); `x = (k + j/128) ln2 + r` with `j = m mod 128`, `k = floor(m/128)`;
    /// - `r = x - m ln2/128` by two fma, `ln2/128` split so that `m` times its head (35
    ///   significant bits; |m| < 2^17) is exact, and so is the first difference: |r| <=
    ///   ln2/256 (plus a rounding), where `e^r - 1 = r + r^2 (1/2 + r/6) + r^4 (1/24 + r/120)`
    ///   leaves out `r^6/720 < 2^-60`;
    /// - `2^(j/128) = hi + lo` from the two tables (`src/kir/tables.rs`), and
    ///   `e^x / 2^k = hi + fma(hi, e^r - 1, lo)`: one rounding of the result's size, the
    ///   others ~2^-60 below it (bound ~0.51 ULP);
    /// - `* 2^k`: `(bits(t) & !127) << 45` (k's bits moved into the exponent field) added to
    ///   the result's bits as an integer; `2^k hi` stays normal for |x| <= 708.
    pub(super) fn exp_table(&mut self, x: Value) -> Value {
        const N_LOG2: i64 = 7;
        let magic = self.c(self.magic());
        let inv = self.c(128.0 / std::f64::consts::LN_2);
        let t = self.fma(x, inv, magic);
        let m = self.sub(t, magic);
        let nhi = self.c(-0.005415212348225395544432103633880615234375);
        let nlo = self.c(1.008228146099776849886107962851552003105e-13);
        let r = self.fma(m, nhi, x);
        let r = self.fma(m, nlo, r);
        // e^r - 1.
        let r2 = self.mul(r, r);
        let r4 = self.mul(r2, r2);
        let (c2, c3, c4, c5) = (
            self.c(0.5),
            self.c(1.0 / 6.0),
            self.c(1.0 / 24.0),
            self.c(1.0 / 120.0),
        );
        let a = self.fma(r, c3, c2);
        let b = self.fma(r, c5, c4);
        let p = self.fma(r2, a, r);
        let p = self.fma(r4, b, p);
        // 2^(j/128) (e^r - 1) + 2^(j/128).
        let tb = self.bits(t);
        let jm = self.ci((1 << N_LOG2) - 1);
        let j = self.bin(BinaryOp::And, tb, jm);
        let hi = self.b.push(
            Inst::Lookup {
                table: crate::kir::Table::Exp2Hi,
                index: j,
            },
            DType::F64,
        );
        let lo = self.b.push(
            Inst::Lookup {
                table: crate::kir::Table::Exp2Lo,
                index: j,
            },
            DType::F64,
        );
        let s = self.fma(hi, p, lo);
        let y = self.add(hi, s);
        // * 2^k.
        let km = self.ci(!((1 << N_LOG2) - 1));
        let kb = self.bin(BinaryOp::And, tb, km);
        let sh = self.ci(52 - N_LOG2);
        let kb = self.bin(BinaryOp::Shl, kb, sh);
        let yb = self.bits(y);
        let rb = self.add(yb, kb);
        let res = self.float(rb);
        // |x| > 708, inf and NaN compared as bits: NaN's are above every finite value's.
        let xb = self.bits(x);
        let am = self.ci(i64::MAX);
        let ax = self.bin(BinaryOp::And, xb, am);
        let lc = self.ci(708f64.to_bits() as i64);
        let rare = self.bin(BinaryOp::Gt, ax, lc);
        self.fallback_unary(rare, res, UnaryOp::Exp, x)
    }

    pub(super) fn exp(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        // ln2 split so that k * LN2_HI is exact; fdlibm's / musl's minimax coefficients.
        let (ln2_hi, ln2_lo, log2e) = if f64 {
            (
                6.93147180369123816490e-01,
                1.90821492927058770002e-10,
                std::f64::consts::LOG2_E,
            )
        } else {
            (6.9314575195e-01, 1.4286067653e-06, 1.4426950216e+00)
        };
        let p: &[f64] = if f64 {
            &[
                1.66666666666666019037e-01,
                -2.77777777770155933842e-03,
                6.61375632143793436117e-05,
                -1.65339022054652515390e-06,
                4.13813679705723846039e-08,
            ]
        } else {
            &[1.6666625440e-1, -2.7667332906e-3]
        };
        let (overflow, underflow, clamp_hi, clamp_lo) = if f64 {
            (709.782712893384, -745.1332191019412, 709.8, -745.2)
        } else {
            (88.72283935546875, -103.97208404541016, 89.0, -104.0)
        };
        // Clamp so that k stays in range (NaN passes through: comparisons are false).
        let hi_c = self.c(clamp_hi);
        let lo_c = self.c(clamp_lo);
        let too_big = self.bin(BinaryOp::Gt, x, hi_c);
        let xc = self.select(too_big, hi_c, x);
        let too_small = self.bin(BinaryOp::Lt, xc, lo_c);
        let xc = self.select(too_small, lo_c, xc);
        // k = round(x / ln2); r = x - k ln2 = hi - lo.
        let l2e = self.c(log2e);
        let t = self.mul(xc, l2e);
        let k = self.unary(UnaryOp::Round, t);
        let lh = self.c(ln2_hi);
        let ll = self.c(ln2_lo);
        let kh = self.mul(k, lh);
        let hi = self.sub(xc, kh);
        let lo = self.mul(k, ll);
        let r = self.sub(hi, lo);
        // c = r - r^2 P(r^2); y = 1 - ((lo - r c / (2 - c)) - hi)
        let z = self.mul(r, r);
        let pz = self.horner(z, p);
        let zp = self.mul(z, pz);
        let c = self.sub(r, zp);
        let rc = self.mul(r, c);
        let two = self.c(2.0);
        let den = self.sub(two, c);
        let q = self.div(rc, den);
        let lq = self.sub(lo, q);
        let lqh = self.sub(lq, hi);
        let one = self.c(1.0);
        let y = self.sub(one, lqh);
        // y * 2^k as two exact factors 2^k1 * 2^k2 (k1 = floor(k/2)).
        let half = self.c(0.5);
        let kh2 = self.mul(k, half);
        let k1 = self.unary(UnaryOp::Floor, kh2);
        let k2 = self.sub(k, k1);
        let p1 = self.pow2(k1);
        let p2 = self.pow2(k2);
        let s = self.mul(y, p1);
        let res = self.mul(s, p2);
        // Fix-ups: overflow -> inf, underflow -> 0.
        let ov = self.c(overflow);
        let inf = self.c(f64::INFINITY);
        let is_ov = self.bin(BinaryOp::Gt, x, ov);
        let res = self.select(is_ov, inf, res);
        let un = self.c(underflow);
        let zero = self.c(0.0);
        let is_un = self.bin(BinaryOp::Lt, x, un);
        self.select(is_un, zero, res)
    }

    /// `expm1`: `x = k ln2 + r` (k = 0 for |x| <= ln2/2), `e^r - 1` by fdlibm's rational form
    /// with the reduction's rounding error `c` folded back, then rescaled by `2^k` in the order
    /// that keeps the result accurate for each range of k. |x| >= 56 ln2: `exp(x)` or -1.
    pub(super) fn expm1(&mut self, x: Value) -> Value {
        let big = self.expm1_big();
        let res = self.expm1_core(x);
        // Large |x|: exp(x) above, -1 below.
        let bigc = self.c(big);
        let nbigc = self.c(-big);
        let mone = self.c(-1.0);
        let ex = self.exp(x);
        let pos_big = self.bin(BinaryOp::Ge, x, bigc);
        let res = self.select(pos_big, ex, res);
        let neg_big = self.bin(BinaryOp::Le, x, nbigc);
        let res = self.select(neg_big, mone, res);
        let is_nan = self.bin(BinaryOp::Ne, x, x);
        self.select(is_nan, x, res)
    }

    /// Beyond ±this, `expm1(x)` is `exp(x)` (positive) or -1 (negative) to the last bit.
    fn expm1_big(&self) -> f64 {
        if self.f64() {
            56.0 * LN_2
        } else {
            27.0 * LN_2
        }
    }

    /// `expm1` for |x| below [`Self::expm1_big`] (larger arguments are clamped: the caller
    /// selects another result for them).
    fn expm1_core(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let (ln2_hi, ln2_lo, invln2) = if f64 {
            (
                6.93147180369123816490e-01,
                1.90821492927058770002e-10,
                1.44269504088896338700e+00,
            )
        } else {
            (6.9313812256e-01, 9.0580006145e-06, 1.4426950216e+00)
        };
        let q: &[f64] = if f64 {
            &[
                1.0,
                -3.33333333333331316428e-02,
                1.58730158725481460165e-03,
                -7.93650757867487942473e-05,
                4.00821782732936239552e-06,
                -2.01099218183624371326e-07,
            ]
        } else {
            &[1.0, -3.3333212137e-2, 1.5807170421e-3]
        };
        let big = self.expm1_big();
        let (mant, kmid) = if f64 { (52.0, 20.0) } else { (23.0, 23.0) };
        let ax = self.unary(UnaryOp::Abs, x);
        let half_ln2 = self.c(0.5 * LN_2);
        let small = self.bin(BinaryOp::Le, ax, half_ln2);
        // Reduction (x clamped so that the unused lanes stay finite).
        let bigc = self.c(big);
        let nbigc = self.c(-big);
        let xc = self.bin(BinaryOp::Minimum, x, bigc);
        let xc = self.bin(BinaryOp::Maximum, xc, nbigc);
        let il = self.c(invln2);
        let t = self.mul(xc, il);
        let half = self.c(0.5);
        let hs = self.bin(BinaryOp::Copysign, half, xc);
        let t = self.add(t, hs);
        let k = self.unary(UnaryOp::Trunc, t);
        let zero = self.c(0.0);
        let k = self.select(small, zero, k);
        let lh = self.c(ln2_hi);
        let ll = self.c(ln2_lo);
        let kh = self.mul(k, lh);
        let hi = self.sub(xc, kh);
        let lo = self.mul(k, ll);
        let r = self.sub(hi, lo);
        let hr = self.sub(hi, r);
        let c = self.sub(hr, lo);
        // e^r - 1 = r - (r e - hxs) with e from the rational approximation.
        let hfx = self.mul(half, r);
        let hxs = self.mul(r, hfx);
        let r1 = self.horner(hxs, q);
        let three = self.c(3.0);
        let rh = self.mul(r1, hfx);
        let t = self.sub(three, rh);
        let six = self.c(6.0);
        let xt = self.mul(r, t);
        let den = self.sub(six, xt);
        let num = self.sub(r1, t);
        let e = self.div(num, den);
        let e = self.mul(hxs, e);
        // k == 0: x - (x e - hxs).
        let xe = self.mul(r, e);
        let xe = self.sub(xe, hxs);
        let res0 = self.sub(r, xe);
        // Otherwise e = x (e - c) - c - hxs.
        let ec = self.sub(e, c);
        let e2 = self.mul(r, ec);
        let e2 = self.sub(e2, c);
        let e2 = self.sub(e2, hxs);
        let twopk = self.pow2(k);
        // k == -1: 0.5 (x - e) - 0.5.
        let xme = self.sub(r, e2);
        let hm = self.mul(half, xme);
        let res_m1 = self.sub(hm, half);
        // k == 1: x < -0.25 ? -2 (e - (x + 0.5)) : 1 + 2 (x - e).
        let two = self.c(2.0);
        let mtwo = self.c(-2.0);
        let one = self.c(1.0);
        let xh = self.add(r, half);
        let exh = self.sub(e2, xh);
        let a1 = self.mul(mtwo, exh);
        let tx = self.mul(two, xme);
        let b1 = self.add(one, tx);
        let q25 = self.c(-0.25);
        let lt = self.bin(BinaryOp::Lt, r, q25);
        let res_1 = self.select(lt, a1, b1);
        // k < 0 or k > 56: (x - e + 1) 2^k - 1.
        let y = self.add(xme, one);
        let y = self.mul(y, twopk);
        let res_far = self.sub(y, one);
        // 2 <= k < kmid: (x - e + (1 - 2^-k)) 2^k; else (x - (e + 2^-k) + 1) 2^k.
        let nk = self.unary(UnaryOp::Neg, k);
        let u = self.pow2(nk);
        let omu = self.sub(one, u);
        let y1 = self.add(xme, omu);
        let y1 = self.mul(y1, twopk);
        let eu = self.add(e2, u);
        let y2 = self.sub(r, eu);
        let y2 = self.add(y2, one);
        let y2 = self.mul(y2, twopk);
        let kmidc = self.c(kmid);
        let below_mid = self.bin(BinaryOp::Lt, k, kmidc);
        let res_mid = self.select(below_mid, y1, y2);
        let mantc = self.c(mant + 4.0);
        let far_hi = self.bin(BinaryOp::Gt, k, mantc);
        let far_lo = self.bin(BinaryOp::Lt, k, zero);
        let far = self.bin(BinaryOp::Or, far_hi, far_lo);
        let res = self.select(far, res_far, res_mid);
        let is1 = self.bin(BinaryOp::Eq, k, one);
        let res = self.select(is1, res_1, res);
        let mone = self.c(-1.0);
        let ism1 = self.bin(BinaryOp::Eq, k, mone);
        let res = self.select(ism1, res_m1, res);
        let is0 = self.bin(BinaryOp::Eq, k, zero);
        let res = self.select(is0, res0, res);
        // Tiny x (and ±0) is x itself.
        let tiny = self.c(if f64 { 2f64.powi(-54) } else { 2f64.powi(-25) });
        let is_tiny = self.bin(BinaryOp::Lt, ax, tiny);
        self.select(is_tiny, x, res)
    }

    /// `tanh` from one `expm1`: `1 - 2/(e^{2|x|} + 1)` above ln(3)/2, `t/(t+2)` with
    /// `t = expm1(2|x|)` above ln(5/3)/2, `-t/(t+2)` with `t = expm1(-2|x|)` below; sign last.
    pub(super) fn tanh(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let ax = self.unary(UnaryOp::Abs, x);
        let mid = self.c(0.5 * (5.0f64 / 3.0).ln());
        let upper = self.c(0.5 * 3.0f64.ln());
        let sat = self.c(if f64 { 20.0 } else { 9.0 });
        let above_mid = self.bin(BinaryOp::Gt, ax, mid);
        let two = self.c(2.0);
        let mtwo = self.c(-2.0);
        let p2 = self.mul(two, ax);
        let m2 = self.mul(mtwo, ax);
        let arg = self.select(above_mid, p2, m2);
        // Where 2|x| passes expm1's exp range, tanh is ±1 already (`sat` is below it).
        let t = self.expm1_core(arg);
        let t2 = self.add(t, two);
        let one = self.c(1.0);
        let q = self.div(two, t2);
        let r_hi = self.sub(one, q);
        let r_mid = self.div_exact_den(t, two);
        let r_lo = self.unary(UnaryOp::Neg, r_mid);
        let above_up = self.bin(BinaryOp::Gt, ax, upper);
        let r = self.select(above_mid, r_mid, r_lo);
        let r = self.select(above_up, r_hi, r);
        let big = self.bin(BinaryOp::Gt, ax, sat);
        let r = self.select(big, one, r);
        // Subnormal (and zero) |x|: tanh(x) = x.
        let mn = self.c(if f64 {
            f64::MIN_POSITIVE
        } else {
            f32::MIN_POSITIVE as f64
        });
        let sub = self.bin(BinaryOp::Lt, ax, mn);
        let r = self.select(sub, ax, r);
        let r = self.bin(BinaryOp::Copysign, r, x);
        let is_nan = self.bin(BinaryOp::Ne, x, x);
        self.select(is_nan, x, r)
    }

    /// `e^|x|` for `|x|` below the overflow limit of `exp`, and `e^|x| 2^-2043` (f64) /
    /// `e^|x| 2^-235` (f32) above it (fdlibm's `__expo2`: K ln2 is chosen so that `|x| - K ln2`
    /// is exact there); the second value is the scale to multiply twice to get `e^|x| / 2`.
    fn exp_abs(&mut self, ax: Value, lim: Value) -> (Value, Value) {
        let (kln2, half_k) = if self.f64() {
            (1416.0996898839683, 1021.0)
        } else {
            (162.88958740234375, 117.0)
        };
        let kc = self.c(kln2);
        let shifted = self.sub(ax, kc);
        let over = self.bin(BinaryOp::Ge, ax, lim);
        let a = self.select(over, shifted, ax);
        let e = self.exp(a);
        let hk = self.c(half_k);
        (e, self.pow2(hk))
    }

    /// `sinh`: from `t = expm1(|x|)`: `h (2t - t^2/(t+1))` below 1, `h (t + t/(t+1))` up to the
    /// overflow of `e^|x|` (where `t = e^|x|` once `expm1` is `exp`), `h e^|x|` computed without
    /// overflow above; `h = copysign(1/2, x)`. One `expm1` core and one `exp`.
    pub(super) fn sinh(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let ax = self.unary(UnaryOp::Abs, x);
        let half = self.c(0.5);
        let h = self.bin(BinaryOp::Copysign, half, x);
        let limc = self.c(if f64 { 709.782712893384 } else { 88.7216796875 });
        let (e, scale) = self.exp_abs(ax, limc);
        let core = self.expm1_core(ax);
        let bigc = self.c(self.expm1_big());
        let in_core = self.bin(BinaryOp::Lt, ax, bigc);
        let t = self.select(in_core, core, e);
        let one = self.c(1.0);
        let two = self.c(2.0);
        let t1 = self.add(t, one);
        let tt = self.mul(t, t);
        let q = self.div(tt, t1);
        let t2 = self.mul(two, t);
        let a = self.sub(t2, q);
        let small = self.mul(h, a);
        let q2 = self.div(t, t1);
        let b = self.add(t, q2);
        let mid = self.mul(h, b);
        let two_h = self.mul(two, h);
        let large = self.mul(e, scale);
        let large = self.mul(large, scale);
        let large = self.mul(large, two_h);
        let lt1 = self.bin(BinaryOp::Lt, ax, one);
        let r = self.select(lt1, small, mid);
        let over = self.bin(BinaryOp::Ge, ax, limc);
        let r = self.select(over, large, r);
        let tiny = self.c(if f64 { 2f64.powi(-26) } else { 2f64.powi(-12) });
        let is_tiny = self.bin(BinaryOp::Lt, ax, tiny);
        let r = self.select(is_tiny, x, r);
        let is_nan = self.bin(BinaryOp::Ne, x, x);
        self.select(is_nan, x, r)
    }

    /// `cosh`: `1 + t^2/(2(1+t))` with `t = expm1(|x|)` below ln 2, `(e + 1/e)/2` up to the
    /// overflow of `e^|x|`, `e^|x| / 2` computed without overflow above. One `expm1` core and
    /// one `exp`.
    pub(super) fn cosh(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let ax = self.unary(UnaryOp::Abs, x);
        let limc = self.c(if f64 { 709.782712893384 } else { 88.7216796875 });
        let ln2 = self.c(LN_2);
        let one = self.c(1.0);
        let two = self.c(2.0);
        let half = self.c(0.5);
        let axs = self.bin(BinaryOp::Minimum, ax, ln2);
        let t = self.expm1_core(axs);
        let tt = self.mul(t, t);
        let t1 = self.add(one, t);
        let d = self.mul(two, t1);
        let q = self.div(tt, d);
        let small = self.add(one, q);
        let (e, scale) = self.exp_abs(ax, limc);
        let ie = self.div(one, e);
        let s = self.add(e, ie);
        let mid = self.mul(half, s);
        let large = self.mul(e, scale);
        let large = self.mul(large, scale);
        let below = self.bin(BinaryOp::Lt, ax, ln2);
        let r = self.select(below, small, mid);
        let over = self.bin(BinaryOp::Ge, ax, limc);
        let r = self.select(over, large, r);
        let tiny = self.c(if f64 { 2f64.powi(-26) } else { 2f64.powi(-12) });
        let is_tiny = self.bin(BinaryOp::Lt, ax, tiny);
        let r = self.select(is_tiny, one, r);
        let is_nan = self.bin(BinaryOp::Ne, x, x);
        self.select(is_nan, x, r)
    }
}
