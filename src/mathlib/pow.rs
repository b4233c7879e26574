//! `pow` (float `**` float) as kernel IR: fdlibm's `e_pow.c` / `e_powf.c` without branches.
//!
//! `log2|x|` in extended precision: `|x| = 2^n m` with `m` moved next to 1 or 1.5 (`bp`),
//! `s = (m - bp)/(m + bp)` as a head with a short mantissa plus an exactly computed tail, the
//! series `log2(m/bp) = (2/ln 2)(s + s^3/3 + ...)` summed in head + tail pieces (products of
//! short-mantissa heads are exact), plus `n` and `log2(bp)` (two parts): `t1 + t2` carries
//! about 64 (f64) / 36 (f32) bits. Then `y log2|x|` as `p_h + p_l` (the head of `y` times
//! `t1` exact), `2^(p_h + p_l)` by the same rational as `exp` with the tail folded in, and
//! `2^n` applied as two exact factors (a subnormal result rounds once more). Over- and
//! underflow are decided on `p_h + p_l` as fdlibm does, including the halfway cases at the
//! limits.
//!
//! Special cases, C99's and glibc's (so NumPy's): `pow(x, ±0) = 1` even for NaN `x`,
//! `pow(1, y) = 1` even for NaN `y`; `pow(-1, ±inf) = 1`; `y = ±inf`: 0 or inf by `|x| < 1`;
//! `x = ±0, ±inf`: 0 or inf by the sign of `y`, negative for a negative `x` and an odd
//! integer `y`; a negative finite `x` with a non-integer `y` is an invalid operation (x86's
//! default NaN, sign bit set, as glibc's `(x - x) / (x - x)` gives); an odd integer
//! `y` keeps the sign of `x`. NaN operands give glibc's NaN: `x + y` when `y` is infinite or
//! NaN, else `x * x` negated for an odd `y` with the sign of `x` (so `pow(-NaN, 1)` is a
//! positive NaN, as in glibc).
#![allow(clippy::excessive_precision)]
use super::Emit;
use crate::kir::Value;
use crate::ops::{BinaryOp, UnaryOp};

/// fdlibm's constants for one float type.
struct PowConsts {
    dp_h: f64,
    dp_l: f64,
    l: [f64; 6],
    p: [f64; 5],
    lg2: f64,
    lg2_h: f64,
    lg2_l: f64,
    ovt: f64,
    cp: f64,
    cp_h: f64,
    cp_l: f64,
    /// Upper limits of `m` for interval 0 (around 1) and interval 1 (around 1.5).
    k0: f64,
    k1: f64,
    /// `p_h + p_l` above this overflows, below `-under` underflows.
    over: f64,
    under: f64,
}

const POW_F64: PowConsts = PowConsts {
    dp_h: 5.84962487220764160156e-01,
    dp_l: 1.35003920212974897128e-08,
    l: [
        5.99999999999994648725e-01,
        4.28571428578550184252e-01,
        3.33333329818377432918e-01,
        2.72728123808534006489e-01,
        2.30660745775561754067e-01,
        2.06975017800338417784e-01,
    ],
    p: [
        1.66666666666666019037e-01,
        -2.77777777770155933842e-03,
        6.61375632143793436117e-05,
        -1.65339022054652515390e-06,
        4.13813679705723846039e-08,
    ],
    lg2: 6.93147180559945286227e-01,
    lg2_h: 6.93147182464599609375e-01,
    lg2_l: -1.90465429995776804525e-09,
    ovt: 8.0085662595372944372e-17,
    cp: 9.61796693925975554329e-01,
    cp_h: 9.61796700954437255859e-01,
    cp_l: -7.02846165095275826516e-09,
    // High words 0x3ff3988f and 0x3ffbb67a (fdlibm's j <= 0x3988E, j < 0xBB67A).
    k0: 1.224761962890625,
    k1: 1.732025146484375,
    over: 1024.0,
    under: 1075.0,
};

const POW_F32: PowConsts = PowConsts {
    dp_h: 5.84960938e-01,
    dp_l: 1.56322085e-06,
    l: [
        6.0000002384e-01,
        4.2857143283e-01,
        3.3333334327e-01,
        2.7272811532e-01,
        2.3066075146e-01,
        2.0697501302e-01,
    ],
    p: [
        1.6666667163e-01,
        -2.7777778450e-03,
        6.6137559770e-05,
        -1.6533901999e-06,
        4.1381369442e-08,
    ],
    lg2: 6.9314718246e-01,
    lg2_h: 6.93145752e-01,
    lg2_l: 1.42860654e-06,
    ovt: 4.2995665694e-08,
    cp: 9.6179670095e-01,
    cp_h: 9.6191406250e-01,
    cp_l: -1.1736857402e-04,
    // Words 0x3f9cc472 and 0x3fddb3d7 (fdlibm's j <= 0x1cc471, j < 0x5db3d7).
    k0: 1.2247449159622192,
    k1: 1.7320507764816284,
    over: 128.0,
    under: 150.0,
};

impl Emit<'_> {
    /// `x` with the low bits of its word cleared by `mask` (f32 only; f64 clears the low
    /// 32 bits as [`Self::trunc_mantissa`] does).
    fn trunc_f32_mask(&mut self, x: Value, mask: u32) -> Value {
        if self.f64() {
            return self.trunc_mantissa(x);
        }
        let m = self.ci(mask as i32 as i64);
        let b = self.bits(x);
        let t = self.bin(BinaryOp::And, b, m);
        self.float(t)
    }

    /// `log2(ax) = t1 + t2` for a positive finite `ax` (see the module docs).
    fn log2_ext(&mut self, ax: Value, k: &PowConsts) -> (Value, Value) {
        let f64 = self.f64();
        let (mbits, bias) = self.layout();
        let one = self.c(1.0);
        let zero = self.c(0.0);
        // Subnormals: scale by 2^53 (f32: 2^24) first.
        let (min_normal, pre) = if f64 {
            (f64::MIN_POSITIVE, 53)
        } else {
            (f32::MIN_POSITIVE as f64, 24)
        };
        let mn = self.c(min_normal);
        let sub = self.bin(BinaryOp::Lt, ax, mn);
        let sc = self.c((1u64 << pre) as f64);
        let axs = self.mul(ax, sc);
        let a = self.select(sub, axs, ax);
        let nadj = self.c(-(pre as f64));
        let nadj = self.select(sub, nadj, zero);
        let b = self.bits(a);
        let sh = self.ci(mbits);
        let e = self.bin(BinaryOp::Shr, b, sh);
        let ef = self.int_to_float(e);
        let biasc = self.c(bias as f64);
        let n = self.sub(ef, biasc);
        let n = self.add(n, nadj);
        let mmask = self.ci((1i64 << mbits) - 1);
        let mb = self.bin(BinaryOp::And, b, mmask);
        let onebits = self.ci(bias << mbits);
        let mb = self.bin(BinaryOp::Or, mb, onebits);
        let m = self.float(mb);
        // Interval: m near 1 (k = 0), near 1.5 (k = 1), or halved to near 0.75 -> 1.
        let k0 = self.c(k.k0);
        let k1 = self.c(k.k1);
        let in0 = self.bin(BinaryOp::Lt, m, k0);
        let in1 = self.bin(BinaryOp::Lt, m, k1);
        let not0 = self.not(in0);
        let is1 = self.and(not0, in1);
        let high = self.not(in1);
        let half = self.c(0.5);
        let mh = self.mul(m, half);
        let m = self.select(high, mh, m);
        let nn = self.add(n, one);
        let n = self.select(high, nn, n);
        let onehalf = self.c(1.5);
        let bp = self.select(is1, onehalf, one);
        let dph = self.c(k.dp_h);
        let dp_h = self.select(is1, dph, zero);
        let dpl = self.c(k.dp_l);
        let dp_l = self.select(is1, dpl, zero);
        // ss = s_h + s_l = (m - bp) / (m + bp).
        let u = self.sub(m, bp);
        let mbp = self.add(m, bp);
        let v = self.div(one, mbp);
        let ss = self.mul(u, v);
        let s_h = self.trunc_mantissa(ss);
        let t_h = self.trunc_mantissa(mbp);
        let thb = self.sub(t_h, bp);
        let t_l = self.sub(m, thb);
        let sht = self.mul(s_h, t_h);
        let a = self.sub(u, sht);
        let stl = self.mul(s_h, t_l);
        let a = self.sub(a, stl);
        let s_l = self.mul(v, a);
        // log(m/bp) pieces.
        let s2 = self.mul(ss, ss);
        let s4 = self.mul(s2, s2);
        let poly = self.horner(s2, &k.l);
        let r = self.mul(s4, poly);
        let shs = self.add(s_h, ss);
        let slx = self.mul(s_l, shs);
        let r = self.add(r, slx);
        let s2 = self.mul(s_h, s_h);
        let three = self.c(3.0);
        let t = self.add(three, s2);
        let t = self.add(t, r);
        let t_h = self.trunc_mantissa(t);
        let th3 = self.sub(t_h, three);
        let th3 = self.sub(th3, s2);
        let t_l = self.sub(r, th3);
        // u + v = ss (1 + ...), then times 2 / (3 ln 2).
        let u = self.mul(s_h, t_h);
        let a = self.mul(s_l, t_h);
        let bb = self.mul(t_l, ss);
        let v = self.add(a, bb);
        let uv = self.add(u, v);
        let p_h = self.trunc_mantissa(uv);
        let ph_u = self.sub(p_h, u);
        let p_l = self.sub(v, ph_u);
        let cph = self.c(k.cp_h);
        let z_h = self.mul(cph, p_h);
        let cpl = self.c(k.cp_l);
        let cp = self.c(k.cp);
        let a = self.mul(cpl, p_h);
        let bb = self.mul(p_l, cp);
        let z_l = self.add(a, bb);
        let z_l = self.add(z_l, dp_l);
        // log2(ax) = n + dp_h + z_h + z_l = t1 + t2.
        let t = self.add(z_h, z_l);
        let t = self.add(t, dp_h);
        let t = self.add(t, n);
        let t1 = self.trunc_mantissa(t);
        let a = self.sub(t1, n);
        let a = self.sub(a, dp_h);
        let a = self.sub(a, z_h);
        let t2 = self.sub(z_l, a);
        (t1, t2)
    }

    /// `2^(p_h + p_l)` for `|p_h + p_l|` within the limits (larger values are clamped by the
    /// caller's selects).
    fn exp2_ext(&mut self, p_h: Value, p_l: Value, k: &PowConsts) -> Value {
        // n = nearest integer of p_h + p_l; p_h - n is exact.
        let z = self.add(p_h, p_l);
        let n = self.unary(UnaryOp::Round, z);
        let p_h = self.sub(p_h, n);
        let t = self.add(p_l, p_h);
        let t = self.trunc_f32_mask(t, 0xffff8000);
        let lgh = self.c(k.lg2_h);
        let u = self.mul(t, lgh);
        let tph = self.sub(t, p_h);
        let a = self.sub(p_l, tph);
        let lg = self.c(k.lg2);
        let a = self.mul(a, lg);
        let lgl = self.c(k.lg2_l);
        let bb = self.mul(t, lgl);
        let v = self.add(a, bb);
        let z = self.add(u, v);
        let zu = self.sub(z, u);
        let w = self.sub(v, zu);
        // e^z (1 + w) by exp's rational form.
        let t = self.mul(z, z);
        let poly = self.horner(t, &k.p);
        let tp = self.mul(t, poly);
        let t1 = self.sub(z, tp);
        let zt = self.mul(z, t1);
        let two = self.c(2.0);
        let d = self.sub(t1, two);
        let q = self.div(zt, d);
        let zw = self.mul(z, w);
        let wz = self.add(w, zw);
        let r = self.sub(q, wz);
        let one = self.c(1.0);
        let rz = self.sub(r, z);
        let e = self.sub(one, rz);
        let (f1, f2) = self.pow2_split(n);
        let e = self.mul(e, f1);
        self.mul(e, f2)
    }

    /// `pow(x, y)` (see the module docs).
    pub(super) fn pow(&mut self, x: Value, y: Value) -> Value {
        let f64 = self.f64();
        let k = if f64 { &POW_F64 } else { &POW_F32 };
        let zero = self.c(0.0);
        let one = self.c(1.0);
        let half = self.c(0.5);
        let inf = self.c(f64::INFINITY);
        let ax = self.unary(UnaryOp::Abs, x);
        let ay = self.unary(UnaryOp::Abs, y);
        // y an integer (false for inf, NaN), and odd (|y| >= 2^53 is even).
        let fy = self.unary(UnaryOp::Floor, y);
        let yint = self.bin(BinaryOp::Eq, fy, y);
        let hy = self.mul(y, half);
        let fhy = self.unary(UnaryOp::Floor, hy);
        let hfrac = self.bin(BinaryOp::Ne, fhy, hy);
        let yodd = self.and(yint, hfrac);
        // The sign bit of x (so -0 and -NaN count as negative).
        let sx = self.bin(BinaryOp::Copysign, one, x);
        let xneg = self.bin(BinaryOp::Lt, sx, zero);
        let neg_result = self.and(xneg, yodd);

        // Main path: |x|^y for finite nonzero x and y.
        let (t1, t2) = self.log2_ext(ax, k);
        let y1 = self.trunc_mantissa(y);
        let yy1 = self.sub(y, y1);
        let a = self.mul(yy1, t1);
        let bb = self.mul(y, t2);
        let p_l = self.add(a, bb);
        let p_h = self.mul(y1, t1);
        let z = self.add(p_l, p_h);
        // Over/underflow, with fdlibm's halfway tests at z == limit.
        let overc = self.c(k.over);
        let underc = self.c(-k.under);
        let ovt = self.c(k.ovt);
        let zph = self.sub(z, p_h);
        let plo = self.add(p_l, ovt);
        let gt_o = self.bin(BinaryOp::Gt, z, overc);
        let eq_o = self.bin(BinaryOp::Eq, z, overc);
        let half_o = self.bin(BinaryOp::Gt, plo, zph);
        let eq_o = self.and(eq_o, half_o);
        let over = self.or(gt_o, eq_o);
        let lt_u = self.bin(BinaryOp::Lt, z, underc);
        let eq_u = self.bin(BinaryOp::Eq, z, underc);
        let half_u = self.bin(BinaryOp::Le, p_l, zph);
        let eq_u = self.and(eq_u, half_u);
        let under = self.or(lt_u, eq_u);
        // Clamp into range so that the scaling stays finite (those lanes are replaced).
        let clamp = self.c(k.over);
        let in_range = self.bin(BinaryOp::Lt, ay, inf);
        let p_hc = self.bin(BinaryOp::Minimum, p_h, clamp);
        let nclamp = self.c(-k.under);
        let p_hc = self.bin(BinaryOp::Maximum, p_hc, nclamp);
        let p_hc = self.select(in_range, p_hc, zero);
        let p_lc = self.select(in_range, p_l, zero);
        let r = self.exp2_ext(p_hc, p_lc, k);
        let r = self.select(over, inf, r);
        let r = self.select(under, zero, r);
        // Negative finite x: odd y keeps the sign; a non-integer y is invalid.
        let nr = self.unary(UnaryOp::Neg, r);
        let r = self.select(neg_result, nr, r);
        let xlt0 = self.bin(BinaryOp::Lt, x, zero);
        let noty = self.not(yint);
        let invalid = self.and(xlt0, noty);
        let nan = self.default_nan();
        let r = self.select(invalid, nan, r);

        // x = ±0, ±inf, NaN (y finite, nonzero): glibc's x^2 (or 1/x^2 for y < 0), negated
        // for a negative x and an odd y.
        let x2 = self.mul(x, x);
        let nx2 = self.unary(UnaryOp::Neg, x2);
        let x2 = self.select(neg_result, nx2, x2);
        let inv = self.div(one, x2);
        let yneg = self.bin(BinaryOp::Lt, y, zero);
        let at_x = self.select(yneg, inv, x2);
        let x_zero = self.bin(BinaryOp::Eq, ax, zero);
        let x_inf = self.bin(BinaryOp::Eq, ax, inf);
        let x_nan = self.is_nan(x);
        let x_zin = self.or(x_zero, x_inf);
        let x_zin = self.or(x_zin, x_nan);
        let r = self.select(x_zin, at_x, r);

        // y = ±inf or NaN: NaN operands give x + y; |x| == 1 gives 1; else 0 or inf.
        let y_nan = self.is_nan(y);
        let y_inf = self.bin(BinaryOp::Eq, ay, inf);
        let x_lt1 = self.bin(BinaryOp::Lt, ax, one);
        let ypos = self.bin(BinaryOp::Gt, y, zero);
        let to_zero = self.bin(BinaryOp::Eq, x_lt1, ypos);
        let at_yinf = self.select(to_zero, zero, inf);
        let ax1 = self.bin(BinaryOp::Eq, ax, one);
        let at_yinf = self.select(ax1, one, at_yinf);
        let any_nan = self.or(x_nan, y_nan);
        // x + y, x's NaN when both are (x86's rule, written out: a GPU may commute the sum).
        let xy = self.add(x, y);
        let xx = self.add(x, x);
        let xy = self.select(x_nan, xx, xy);
        let at_yinf = self.select(any_nan, xy, at_yinf);
        let y_spec = self.or(y_inf, y_nan);
        let r = self.select(y_spec, at_yinf, r);

        // pow(x, ±0) = 1 and pow(1, y) = 1, whatever the other operand.
        let y0 = self.bin(BinaryOp::Eq, y, zero);
        let x1 = self.bin(BinaryOp::Eq, x, one);
        let unit = self.or(y0, x1);
        self.select(unit, one, r)
    }
}
