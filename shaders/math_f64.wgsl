// f64 transcendentals in basic f64 arithmetic (SPIR-V's GLSL.std.450 exp/log/sin/... are
// 16/32-bit only; lavapipe returns garbage for f64). Algorithms after fdlibm (Sun, 1993):
// exp, log, sin/cos kernels, atan, atan2; the others are built on them as in musl/fdlibm.
// Measured error bounds: see src/gpu/wgsl.rs.

const FB_LN2_HI: f64 = 6.93147180369123816490e-01;
const FB_LN2_LO: f64 = 1.90821492927058770002e-10;
const FB_INV_LN2: f64 = 1.44269504088896338700e+00;
const FB_PI: f64 = 3.1415926535897931160e+00;
const FB_PI_LO: f64 = 1.2246467991473531772e-16;
const FB_PIO2_HI: f64 = 1.57079632679489655800e+00;
const FB_PIO2_LO: f64 = 6.12323399573676603587e-17;

fn fb_inf_f64() -> f64 { return fb_max_f64() * 2.0; }

// y * 2^k for any k in [-1100, 1100], rounding once (the first step is exact).
fn fb_scale_f64(y: f64, k: i32) -> f64 {
    if (k < -1000) { return ldexp(y, k + 600) * 2.409919865102884e-181; }
    if (k > 1000) { return ldexp(y, k - 600) * 4.149515568880993e+180; }
    return ldexp(y, k);
}

fn fb_exp_f64(x: f64) -> f64 {
    if (!(x == x)) { return x; }
    if (x > 709.782712893383973096) { return fb_inf_f64(); }
    if (x < -745.13321910194110842) { return 0.0; }
    if (abs(x) < 3.725290298461914e-09) { return 1.0 + x; }
    let k = round(x * FB_INV_LN2);
    let hi = x - k * FB_LN2_HI;
    let lo = k * FB_LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (1.66666666666666019037e-01 + t * (-2.77777777770155933842e-03 + t * (6.61375632143793436117e-05 + t * (-1.65339022054652515390e-06 + t * 4.13813679705723846039e-08))));
    let y: f64 = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    return fb_scale_f64(y, i32(k));
}

// log(1 + f) for f = m - 1, m in [sqrt(2)/2, sqrt(2)): returns (2s, tail) with
// log(1+f) = 2s + tail, s = f / (2 + f) (fdlibm's Lg polynomial).
fn fb_log_r_f64(s: f64) -> f64 {
    let z = s * s;
    let w = z * z;
    let t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    let t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    return t1 + t2;
}

// x = m * 2^e with m in [sqrt(2)/2, sqrt(2)), for finite x > 0 (subnormals included).
struct FbSplit { m: f64, e: i32 }
fn fb_split_f64(x: f64) -> FbSplit {
    var v = x;
    var adj = 0;
    if (v < 2.2250738585072014e-308) { v = v * 18014398509481984.0; adj = -54; }
    let fr = frexp(v);
    let fe = i32(fr.exp);
    var m = fr.fract;
    var e = fe + adj;
    if (m < 0.70710678118654752440) { m = m * 2.0; e = e - 1; }
    return FbSplit(m, e);
}

fn fb_log_f64(x: f64) -> f64 {
    if (!(x == x) || x == fb_inf_f64()) { return x; }
    if (x < 0.0) { return fb_nan_f64(); }
    if (x == 0.0) { return -fb_inf_f64(); }
    let sp = fb_split_f64(x);
    let f = sp.m - 1.0;
    let k = f64(sp.e);
    let s = f / (2.0 + f);
    let hfsq: f64 = 0.5 * f * f;
    let r = fb_log_r_f64(s);
    return k * FB_LN2_HI - ((hfsq - (s * (hfsq + r) + k * FB_LN2_LO)) - f);
}

fn fb_log2_f64(x: f64) -> f64 {
    if (!(x == x) || x == fb_inf_f64()) { return x; }
    if (x < 0.0) { return fb_nan_f64(); }
    if (x == 0.0) { return -fb_inf_f64(); }
    let sp = fb_split_f64(x);
    let f = sp.m - 1.0;
    let s = f / (2.0 + f);
    let hfsq: f64 = 0.5 * f * f;
    let r = fb_log_r_f64(s);
    // log(m) = f - hfsq + s*(hfsq+r); split f - hfsq into hi + lo for the multiplication.
    let hi = fb_o_f64(f - hfsq);
    let lo = (f - hi) - hfsq + s * (hfsq + r);
    // 1/ln2 = IVH + IVL
    let ivh: f64 = 1.44269502162933349609e+00;
    let ivl: f64 = 1.92596299112661746887e-08;
    let hi32 = fb_hi26(hi);
    let lo2 = lo + fb_o_f64(hi - hi32);
    let val_hi = hi32 * ivh;
    let val_lo = (lo2 + hi32) * ivl + lo2 * ivh;
    let y = f64(sp.e);
    let w = fb_o_f64(y + val_hi);
    return w + (val_lo + ((y - w) + val_hi));
}

// Keep the top 26 bits of the significand (so products with a 27-bit constant are exact).
fn fb_hi26(x: f64) -> f64 {
    let c = fb_o_f64(x * 134217729.0);
    return c - fb_o_f64(c - x);
}

fn fb_log10_f64(x: f64) -> f64 {
    if (!(x == x) || x == fb_inf_f64()) { return x; }
    if (x < 0.0) { return fb_nan_f64(); }
    if (x == 0.0) { return -fb_inf_f64(); }
    let sp = fb_split_f64(x);
    let f = sp.m - 1.0;
    let s = f / (2.0 + f);
    let hfsq: f64 = 0.5 * f * f;
    let r = fb_log_r_f64(s);
    let hi0 = f - hfsq;
    let hi = fb_hi26(hi0);
    let lo = (f - hi) - hfsq + s * (hfsq + r);
    let ivh: f64 = 4.34294481878168880939e-01;
    let ivl: f64 = 2.50829467116452752298e-11;
    let l2h: f64 = 3.01029995663611771306e-01;
    let l2l: f64 = 3.69423907715893078616e-13;
    let y = f64(sp.e);
    let val_hi = hi * ivh;
    let y2 = y * l2h;
    let val_lo = y * l2l + (lo + hi) * ivl + lo * ivh;
    let w = fb_o_f64(y2 + val_hi);
    return w + (val_lo + ((y2 - w) + val_hi));
}

fn fb_log1p_f64(x: f64) -> f64 {
    if (!(x == x) || x == fb_inf_f64()) { return x; }
    if (x < -1.0) { return fb_nan_f64(); }
    if (x == -1.0) { return -fb_inf_f64(); }
    if (x > 9007199254740992.0) { return fb_log_f64(x); }
    let u = fb_o_f64(1.0 + x);
    if (u == 1.0) { return x; }
    return fb_log_f64(u) * (x / (u - 1.0));
}

fn fb_expm1_f64(x: f64) -> f64 {
    if (!(x == x)) { return x; }
    if (x > 709.0) { return fb_exp_f64(x); }
    if (x < -40.0) { return -1.0; }
    if (abs(x) < 1.1102230246251565e-16) { return x; }
    // expm1(x) = 2 tanh(x/2) / (1 - tanh(x/2)) is circular; use Kahan's trick on u = exp(x).
    let u = fb_o_f64(fb_exp_f64(x));
    if (u == 1.0) { return x; }
    let um1 = u - 1.0;
    if (um1 == -1.0) { return -1.0; }
    return um1 * (x / fb_log_f64(u));
}

// ---- trigonometric -------------------------------------------------------------------

// sin and cos kernels on [-pi/4, pi/4], argument x + y (y the tail of the reduction).
fn fb_ksin_f64(x: f64, y: f64) -> f64 {
    let z = x * x;
    let v = z * x;
    let r: f64 = 8.33333333332248946124e-03 + z * (-1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 + z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)));
    return x - ((z * (0.5 * y - v * r) - y) - v * -1.66666666666666324348e-01);
}

fn fb_kcos_f64(x: f64, y: f64) -> f64 {
    let z = x * x;
    let r = z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * (2.48015872894767294178e-05 + z * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))));
    let hz: f64 = 0.5 * z;
    let w: f64 = 1.0 - hz;
    return w + (((1.0 - w) - hz) + (z * r - x * y));
}

// x = n * pi/2 + (y0 + y1), Cody-Waite in three 33-bit pieces: accurate for |n| < 2^20
// (|x| < ~1.6e6); beyond that the error grows with |x| (no Payne-Hanek reduction).
// 2/pi in 32-bit words after two zero words (Payne-Hanek): bit q of this array (MSB first)
// is bit q - 63 after the point of 2/pi.
const FB_TWO_OVER_PI = array<u32, 44>(0u, 0u, 0xa2f9836eu, 0x4e441529u, 0xfc2757d1u, 0xf534ddc0u, 0xdb629599u, 0x3c439041u, 0xfe5163abu, 0xdebbc561u, 0xb7246e3au, 0x424dd2e0u, 0x06492eeau, 0x09d1921cu, 0xfe1deb1cu, 0xb129a73eu, 0xe88235f5u, 0x2ebb4484u, 0xe99c7026u, 0xb45f7e41u, 0x3991d639u, 0x835339f4u, 0x9c845f8bu, 0xbdf9283bu, 0x1ff897ffu, 0xde05980fu, 0xef2f118bu, 0x5a0a6d1fu, 0x6d367ecfu, 0x27cb09b7u, 0x4f463f66u, 0x9e5fea2du, 0x7527bac7u, 0xebe5f17bu, 0x3d0739f7u, 0x8a5292eau, 0x6bfb5fb1u, 0x1f8d5d08u, 0x56033046u, 0xfc7b6babu, 0xf0cfbc20u, 0x9af4361du, 0xa9e39161u, 0x5ee61b08u);

// 32 bits of FB_TWO_OVER_PI starting at bit q.
fn fb_2opi_bits(q: i32) -> u32 {
    let w = q >> 5u;
    let sh = u32(q & 31);
    let pair = (u64(FB_TWO_OVER_PI[w]) << 32u) | u64(FB_TWO_OVER_PI[w + 1]);
    return u32((pair >> (32u - sh)) & 0xfffffffflu);
}

// hi part of a (26 significant bits) for exact products; a - hi is exact.
fn fb_split_hi(a: f64) -> f64 {
    return bitcast<f64>(bitcast<u64>(a) & 0xfffffffff8000000lu);
}

// Payne-Hanek reduction for |x| >= 2^20 (finite): |x| * 2/pi mod 4 in fixed point, from a
// 192-bit window of 2/pi times the 53-bit significand (exact integer arithmetic).
fn fb_rem_pio2_large_f64(x: f64) -> FbRed {
    let bits = bitcast<u64>(abs(x));
    let e = i32(bits >> 52u) - 1075;
    let m = (bits & 0xffffffffffffflu) | 0x10000000000000lu;
    let ml = m & 0xfffffffflu;
    let mh = m >> 32u;
    // Window: bits of 2/pi from k0 = e - 1 (array bit e + 62): the bits before it add
    // multiples of 4 to |x| * 2/pi. P = m * W, and |x| * 2/pi = P * 2^-190 (mod 4).
    let q0 = e + 62;
    var w: array<u64, 6>;
    for (var i = 0; i < 6; i++) {
        w[i] = u64(fb_2opi_bits(q0 + 32 * (5 - i)));
    }
    var p: array<u64, 6>;
    var carry: u64 = 0lu;
    for (var c = 0; c < 6; c++) {
        let lo = ml * w[c];
        var col = carry + (lo & 0xfffffffflu);
        if (c > 0) { col = col + mh * w[c - 1]; }
        p[c] = col & 0xfffffffflu;
        carry = (col >> 32u) + (lo >> 32u);
    }
    let a = (p[5] << 32u) | p[4];
    let b = (p[3] << 32u) | p[2];
    let cc = (p[1] << 32u) | p[0];
    var n = i32(a >> 62u);
    var f1 = (a << 2u) | (b >> 62u);
    var f2 = (b << 2u) | (cc >> 62u);
    var neg = false;
    if ((f1 >> 63u) != 0lu) {
        // Fraction >= 1/2: round n up, the fraction becomes f - 1 (negate the 128 bits).
        n = n + 1;
        neg = true;
        f2 = ~f2 + 1lu;
        f1 = ~f1 + select(0lu, 1lu, f2 == 0lu);
    }
    // Normalize (x can lie within 2^-61 of a multiple of pi/2): f = (f1 2^-64 + f2 2^-128) * scale
    // with the top bit of f1 set, so that fa below carries 53 significant bits.
    var scale: f64 = 1.0;
    if (f1 == 0lu) { f1 = f2; f2 = 0lu; scale = 5.421010862427522e-20; }
    var lz = 0u;
    if ((f1 >> 32u) == 0lu) { lz = 32u + countLeadingZeros(u32(f1)); } else { lz = countLeadingZeros(u32(f1 >> 32u)); }
    if (lz > 0u && lz < 64u) {
        f1 = (f1 << lz) | (f2 >> (64u - lz));
        f2 = f2 << lz;
        scale = scale * ldexp(f64(1.0), -i32(lz));
    }
    // f = fa + fb, fa holding the top 53 bits exactly, |fb| < ulp(fa).
    let fa = f64(f1 >> 11u) * 1.1102230246251565e-16 * scale;
    let fb = (f64(f1 & 0x7fflu) + f64(f2 >> 11u) * 1.1102230246251565e-16) * 5.421010862427522e-20 * scale;
    // r = f * pi/2 as y0 + y1: Dekker's exact product fa * P1, then the small terms.
    let p1: f64 = 1.5707963267948966;
    let p2: f64 = 6.123233995736766e-17;
    let ah = fb_split_hi(fa);
    let al = fa - ah;
    let ch = fb_split_hi(p1);
    let cl = p1 - ch;
    let hi = fb_o_f64(fa * p1);
    let err = fb_o_f64(fb_o_f64(fb_o_f64(fb_o_f64(ah * ch) - hi) + fb_o_f64(ah * cl)) + fb_o_f64(al * ch)) + fb_o_f64(al * cl);
    let t = fb_o_f64(err + fb_o_f64(fa * p2)) + fb_o_f64(fb * p1);
    var y0 = fb_o_f64(hi + t);
    var y1 = fb_o_f64(hi - y0) + t;
    if (neg != (x < 0.0)) { y0 = -y0; y1 = -y1; }
    if (x < 0.0) { n = -n; }
    return FbRed(n & 3, y0, y1);
}

struct FbRed { n: i32, y0: f64, y1: f64 }
fn fb_rem_pio2_f64(x: f64) -> FbRed {
    if (abs(x) <= 0.7853981633974483) { return FbRed(0, x, 0.0); }
    if (abs(x) >= 1048576.0) { return fb_rem_pio2_large_f64(x); }
    let n = round(x * 6.36619772367581382433e-01);
    var r = x - n * 1.57079632673412561417e+00;
    var w = n * 6.07710050650619224932e-11;
    var t = r;
    w = n * 6.07710050630396597660e-11;
    r = fb_o_f64(t - w);
    w = n * 2.02226624879595063154e-21 - ((t - r) - w);
    t = r;
    w = n * 2.02226624871116645580e-21;
    r = fb_o_f64(t - w);
    w = n * 8.47842766036889956997e-32 - ((t - r) - w);
    let y0 = fb_o_f64(r - w);
    let y1 = (r - y0) - w;
    // n mod 4 without overflowing i32 for huge |x|.
    let q = n - 4.0 * floor(n * 0.25);
    return FbRed(i32(q), y0, y1);
}

fn fb_sin_f64(x: f64) -> f64 {
    if (!(x == x) || abs(x) > fb_max_f64()) { return fb_nan_f64(); }
    if (abs(x) < 7.450580596923828e-09) { return x; }
    let rd = fb_rem_pio2_f64(x);
    let s = fb_ksin_f64(rd.y0, rd.y1);
    let c = fb_kcos_f64(rd.y0, rd.y1);
    switch (rd.n & 3) {
        case 0: { return s; }
        case 1: { return c; }
        case 2: { return -s; }
        default: { return -c; }
    }
}

fn fb_cos_f64(x: f64) -> f64 {
    if (!(x == x) || abs(x) > fb_max_f64()) { return fb_nan_f64(); }
    if (abs(x) < 7.450580596923828e-09) { return 1.0; }
    let rd = fb_rem_pio2_f64(x);
    let s = fb_ksin_f64(rd.y0, rd.y1);
    let c = fb_kcos_f64(rd.y0, rd.y1);
    switch (rd.n & 3) {
        case 0: { return c; }
        case 1: { return -s; }
        case 2: { return -c; }
        default: { return s; }
    }
}

fn fb_tan_f64(x: f64) -> f64 {
    if (!(x == x) || abs(x) > fb_max_f64()) { return fb_nan_f64(); }
    if (abs(x) < 7.450580596923828e-09) { return x; }
    let rd = fb_rem_pio2_f64(x);
    let s = fb_ksin_f64(rd.y0, rd.y1);
    let c = fb_kcos_f64(rd.y0, rd.y1);
    if ((rd.n & 1) == 0) { return s / c; }
    return -c / s;
}

fn fb_atan_f64(x0: f64) -> f64 {
    if (!(x0 == x0)) { return x0; }
    let neg = x0 < 0.0;
    var x = abs(x0);
    var hi: f64 = 0.0;
    var lo: f64 = 0.0;
    var id = -1;
    if (x >= 7.378697629483821e19) {
        return select(FB_PIO2_HI + FB_PIO2_LO, -(FB_PIO2_HI + FB_PIO2_LO), neg);
    }
    if (x < 0.4375) {
        if (x < 3.725290298461914e-09) { return x0; }
    } else if (x < 1.1875) {
        if (x < 0.6875) {
            id = 0; hi = 4.63647609000806093515e-01; lo = 2.26987774529616870924e-17;
            x = (2.0 * x - 1.0) / (2.0 + x);
        } else {
            id = 1; hi = 7.85398163397448278999e-01; lo = 3.06161699786838301793e-17;
            x = (x - 1.0) / (x + 1.0);
        }
    } else if (x < 2.4375) {
        id = 2; hi = 9.82793723247329054082e-01; lo = 1.39033110312309984516e-17;
        x = (x - 1.5) / (1.0 + 1.5 * x);
    } else {
        id = 3; hi = 1.57079632679489655800e+00; lo = 6.12323399573676603587e-17;
        x = -1.0 / x;
    }
    let z = x * x;
    let w = z * z;
    let s1 = z * (3.33333333333329318027e-01 + w * (1.42857142725034663711e-01 + w * (9.09088713343650656196e-02 + w * (6.66107313738753120669e-02 + w * (4.97687799461593236017e-02 + w * 1.62858201153657823623e-02)))));
    let s2 = w * (-1.99999999998764832476e-01 + w * (-1.11111104054623557880e-01 + w * (-7.69187620504482999495e-02 + w * (-5.83357013379057348645e-02 + w * -3.65315727442169155270e-02))));
    if (id < 0) { return x0 - x0 * (s1 + s2); }
    let r = hi - ((x * (s1 + s2) - lo) - x);
    return select(r, -r, neg);
}

fn fb_atan2_f64(y: f64, x: f64) -> f64 {
    if (!(x == x) || !(y == y)) { return x + y; }
    if (x == 1.0) { return fb_atan_f64(y); }
    let ysign = fb_signbit_f64(y);
    let xneg = fb_signbit_f64(x);
    let inf = fb_inf_f64();
    if (y == 0.0) {
        if (!xneg) { return y; }
        return select(FB_PI, -FB_PI, ysign);
    }
    if (x == 0.0) { return select(FB_PIO2_HI, -FB_PIO2_HI, ysign); }
    if (abs(x) == inf) {
        if (abs(y) == inf) {
            let v: f64 = select(f64(0.7853981633974483), f64(2.356194490192345), xneg);
            return select(v, -v, ysign);
        }
        let v: f64 = select(0.0, FB_PI, xneg);
        return select(v, -v, ysign);
    }
    if (abs(y) == inf) { return select(FB_PIO2_HI, -FB_PIO2_HI, ysign); }
    let ex = i32(frexp(x).exp);
    let ey = i32(frexp(y).exp);
    let k = ey - ex;
    var z: f64 = 0.0;
    if (k > 60) {
        z = FB_PIO2_HI + 0.5 * FB_PI_LO;
    } else if (xneg && k < -60) {
        z = 0.0;
    } else {
        z = fb_atan_f64(abs(y / x));
    }
    if (!xneg) { return select(z, -z, ysign); }
    if (!ysign) { return FB_PI - (z - FB_PI_LO); }
    return (z - FB_PI_LO) - FB_PI;
}

fn fb_asin_f64(x: f64) -> f64 {
    return fb_atan2_f64(x, sqrt((1.0 - x) * (1.0 + x)));
}

fn fb_acos_f64(x: f64) -> f64 {
    return fb_atan2_f64(sqrt((1.0 - x) * (1.0 + x)), x);
}

// ---- hyperbolic -----------------------------------------------------------------------

fn fb_sinh_f64(x: f64) -> f64 {
    if (!(x == x)) { return x; }
    let h: f64 = select(f64(0.5), f64(-0.5), x < 0.0);
    let a = abs(x);
    if (a < 3.725290298461914e-09) { return x; }
    if (a < 22.0) {
        let t = fb_expm1_f64(a);
        if (a < 1.0) { return h * (2.0 * t - t * t / (t + 1.0)); }
        return h * (t + t / (t + 1.0));
    }
    if (a < 709.7822265625) { return h * fb_exp_f64(a); }
    let w = fb_exp_f64(0.5 * a);
    let t = h * w;
    return t * w;
}

fn fb_cosh_f64(x: f64) -> f64 {
    if (!(x == x)) { return x; }
    let a = abs(x);
    if (a < 0.34657359027997264) {
        let t = fb_expm1_f64(a);
        let w: f64 = 1.0 + t;
        if (a < 5.551115123125783e-17) { return w; }
        return 1.0 + (t * t) / (w + w);
    }
    if (a < 22.0) {
        let t = fb_exp_f64(a);
        return 0.5 * t + 0.5 / t;
    }
    if (a < 709.7822265625) { return 0.5 * fb_exp_f64(a); }
    let w = fb_exp_f64(0.5 * a);
    let t: f64 = 0.5 * w;
    return t * w;
}

// tanh near 0: the Taylor series x + x^3 (c1 + c2 x^2 + ...) to x^39 (coefficients from the
// Bernoulli numbers, 2^2n (2^2n - 1) B_2n / (2n)!), accurate to 1 ULP for |x| < 0.55. The
// expm1 formula below lost up to 4 ULP there (expm1's own error passes through).
fn fb_tanh_small_f64(x: f64) -> f64 {
    let z = x * x;
    var p: f64 = -2.859136662305254e-08;
    p = p * z + 7.054636946400968e-08;
    p = p * z + -1.7406618963571648e-07;
    p = p * z + 4.294911078273806e-07;
    p = p * z + -1.0597268320104654e-06;
    p = p * z + 2.6147711512907546e-06;
    p = p * z + -6.451689215655431e-06;
    p = p * z + 1.5918905069328964e-05;
    p = p * z + -3.927832388331683e-05;
    p = p * z + 9.691537956929451e-05;
    p = p * z + -0.00023912911424355248;
    p = p * z + 0.000590027440945586;
    p = p * z + -0.0014558343870513183;
    p = p * z + 0.003592128036572481;
    p = p * z + -0.008863235529902197;
    p = p * z + 0.021869488536155203;
    p = p * z + -0.05396825396825397;
    p = p * z + 0.13333333333333333;
    p = p * z + -0.3333333333333333;
    return x + x * (z * p);
}

fn fb_tanh_f64(x: f64) -> f64 {
    if (!(x == x)) { return x; }
    let a = abs(x);
    if (a < 0.55) { return fb_tanh_small_f64(x); }
    var z: f64 = 1.0;
    if (a < 22.0) {
        // 1 - 2 / (e^2a + 1): exp's error is damped by 2u / (u + 1)^2 <= 0.375 here, where
        // expm1 (2 ULP) passed through almost whole.
        let u = fb_exp_f64(2.0 * a);
        z = 1.0 - 2.0 / (u + 1.0);
    }
    return select(z, -z, x < 0.0);
}

fn fb_asinh_f64(x: f64) -> f64 {
    if (!(x == x) || abs(x) == fb_inf_f64()) { return x; }
    let a = abs(x);
    var w: f64 = 0.0;
    if (a < 3.725290298461914e-09) { return x; }
    if (a > 268435456.0) {
        w = fb_log_f64(a) + 6.93147180559945286227e-01;
    } else if (a > 2.0) {
        w = fb_log_f64(2.0 * a + 1.0 / (sqrt(x * x + 1.0) + a));
    } else {
        let t = x * x;
        w = fb_log1p_f64(a + t / (1.0 + sqrt(1.0 + t)));
    }
    return select(w, -w, x < 0.0);
}

fn fb_acosh_f64(x: f64) -> f64 {
    if (!(x == x)) { return x; }
    if (x < 1.0) { return fb_nan_f64(); }
    if (x >= 268435456.0) {
        if (x == fb_inf_f64()) { return x; }
        return fb_log_f64(x) + 6.93147180559945286227e-01;
    }
    if (x == 1.0) { return 0.0; }
    if (x > 2.0) { return fb_log_f64(2.0 * x - 1.0 / (x + sqrt(x * x - 1.0))); }
    let t = x - 1.0;
    return fb_log1p_f64(t + sqrt(2.0 * t + t * t));
}

fn fb_atanh_f64(x: f64) -> f64 {
    if (!(x == x)) { return x; }
    let a = abs(x);
    if (a > 1.0) { return fb_nan_f64(); }
    if (a == 1.0) { return select(fb_inf_f64(), -fb_inf_f64(), x < 0.0); }
    if (a < 3.725290298461914e-09) { return x; }
    var t: f64 = 0.0;
    if (a < 0.5) {
        t = a + a;
        t = 0.5 * fb_log1p_f64(t + t * a / (1.0 - a));
    } else {
        t = 0.5 * fb_log1p_f64((a + a) / (1.0 - a));
    }
    return select(t, -t, x < 0.0);
}

// ---- pow, hypot ------------------------------------------------------------------------

// Exact product a*b = p + e (Dekker/Veltkamp; needs unfused multiply and add).
struct FbDD { hi: f64, lo: f64 }
fn fb_two_prod(a: f64, b: f64) -> FbDD {
    let p = fb_o_f64(a * b);
    let ah = fb_hi26(a);
    let al = a - ah;
    let bh = fb_hi26(b);
    let bl = b - bh;
    let e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    return FbDD(p, e);
}

// log(x) as hi + lo to about 2^-65 relative, for finite x > 0.
fn fb_log_dd(x: f64) -> FbDD {
    let sp = fb_split_f64(x);
    let f = sp.m - 1.0;
    let k = f64(sp.e);
    let dh: f64 = fb_o_f64(2.0 + f);
    let dl = f - (dh - 2.0);
    let s = f / dh;
    let sd = fb_two_prod(s, dh);
    let slo = (((f - sd.hi) - sd.lo) - s * dl) / dh;
    let tail = s * fb_log_r_f64(s);
    // k*ln2 (hi exact) + 2s, then the small terms.
    let a = k * FB_LN2_HI;
    let b: f64 = 2.0 * s;
    let hi = fb_o_f64(a + b);
    let bv = fb_o_f64(hi - a);
    let err = (a - (hi - bv)) + (b - bv);
    let lo = err + (2.0 * slo + tail + k * FB_LN2_LO);
    let h2 = fb_o_f64(hi + lo);
    return FbDD(h2, lo - (h2 - hi));
}

fn fb_is_int_f64(y: f64) -> bool { return floor(y) == y; }
fn fb_is_odd_f64(y: f64) -> bool {
    return fb_is_int_f64(y) && abs(y) < 9007199254740992.0 && floor(y * 0.5) * 2.0 != y;
}

fn fb_pow_f64(x: f64, y: f64) -> f64 {
    let inf = fb_inf_f64();
    if (y == 0.0 || x == 1.0) { return 1.0; }
    if (!(x == x) || !(y == y)) { return x + y; }
    let ay = abs(y);
    if (ay == inf) {
        if (x == -1.0) { return 1.0; }
        if ((abs(x) < 1.0) == (y > 0.0)) { return 0.0; }
        return inf;
    }
    let odd = fb_is_odd_f64(y);
    if (x == 0.0) {
        let neg0 = fb_signbit_f64(x) && odd;
        if (y < 0.0) { return select(inf, -inf, neg0); }
        return select(f64(0.0), f64(-0.0), neg0);
    }
    if (abs(x) == inf) {
        let negs = x < 0.0 && odd;
        if (y < 0.0) { return select(f64(0.0), f64(-0.0), negs); }
        return select(inf, -inf, negs);
    }
    if (x < 0.0 && !fb_is_int_f64(y)) { return fb_nan_f64(); }
    if (abs(x) == 1.0) { return select(f64(1.0), f64(-1.0), x < 0.0 && odd); }
    // |y| this large: the result under- or overflows (and keeps the splitting in range).
    if (ay > 1e300) {
        if ((abs(x) < 1.0) == (y > 0.0)) { return 0.0; }
        return inf;
    }
    let l = fb_log_dd(abs(x));
    let p = fb_two_prod(y, l.hi);
    let plo = p.lo + y * l.lo;
    let hi = fb_o_f64(p.hi + plo);
    let lo = plo - (hi - p.hi);
    var r: f64 = 0.0;
    if (hi > 709.782712893383973096) {
        r = inf;
    } else if (hi < -745.13321910194110842) {
        r = 0.0;
    } else {
        let e = fb_exp_f64(hi);
        r = e + e * lo;
    }
    return select(r, -r, x < 0.0 && odd);
}

fn fb_hypot_f64(a: f64, b: f64) -> f64 {
    let inf = fb_inf_f64();
    let ax = abs(a);
    let bx = abs(b);
    if (ax == inf || bx == inf) { return inf; }
    if (!(a == a) || !(b == b)) { return a + b; }
    let big = max(ax, bx);
    let small = min(ax, bx);
    if (small == 0.0) { return big; }
    let e = i32(frexp(big).exp);
    let p = ldexp(big, -e);
    let q = ldexp(small, -e);
    // sqrt(p^2 + q^2) with the squares as exact double-doubles.
    let pp = fb_two_prod(p, p);
    let qq = fb_two_prod(q, q);
    let sh = fb_o_f64(pp.hi + qq.hi);
    let sl = (pp.hi - sh) + qq.hi + pp.lo + qq.lo;
    let r = sqrt(sh);
    // One Newton step on the residual: r + (s - r^2) / (2r).
    let rr = fb_two_prod(r, r);
    let corr = ((sh - rr.hi) - rr.lo + sl) / (2.0 * r);
    return fb_scale_f64(r + corr, e);
}
