// NumPy semantics WGSL lacks, for one float type. `$F` is replaced by f32 or f64 before use.
// Every function here uses only exact operations (compare, select, +, -, *, /, trunc, floor).
// Float `!=` is written `!(a == b)`: naga lowers `!=` to an ordered comparison (false for NaN).

// An optimization barrier: x unchanged, through its bits plus a zero the driver cannot see
// (`P[4] - 1`, P[4] being 1). Mesa compiles with fast-math assumptions (no
// SignedZeroInfNanPreserve, no NoContraction from naga): it simplifies float algebra
// ((1 + x) - 1 into x), factors `x * 1 + y * 1` into `(x + y) * 1` and then contracts what is
// left into an FMA. A float multiply by an opaque 1 does not survive that; integer operations
// on the bits are invisible to the float optimizer, so each rounding step here is kept.
// `$O` is `fb_bits_o_$F(x)` on drivers that need it (Mesa), `x` elsewhere: the generator
// wraps every float operand and result in `fb_o_*`, which then costs nothing.
fn fb_o_$F(x: $F) -> $F {
    return $O;
}

// The product barrier, on every driver: WGSL lets a driver contract `a * b + c` into an FMA
// (NumPy rounds the product first), and naga's SPIR-V carries no NoContraction.
fn fb_p_$F(x: $F) -> $F {
    return fb_bits_o_$F(x);
}

fn fb_isnan_$F(x: $F) -> bool {
    return !(x == x);
}

fn fb_isinf_$F(x: $F) -> bool {
    return abs(x) > fb_max_$F();
}

// np.sign: NaN -> NaN, +-0 -> +0.
fn fb_sign_$F(x: $F) -> $F {
    if (x > $F(0.0)) { return $F(1.0); }
    if (x < $F(0.0)) { return $F(-1.0); }
    if (x == $F(0.0)) { return $F(0.0); }
    return x;
}

// np.maximum / np.minimum: NaN-propagating (the first NaN operand wins); ties give the second
// operand, as NumPy 2.4 does (maximum(0.0, -0.0) is -0.0).
fn fb_maximum_$F(a: $F, b: $F) -> $F {
    return select(b, a, a > b || fb_isnan_$F(a));
}

fn fb_minimum_$F(a: $F, b: $F) -> $F {
    return select(b, a, a < b || fb_isnan_$F(a));
}

fn fb_copysign_$F(a: $F, b: $F) -> $F {
    return select(abs(a), -abs(a), fb_signbit_$F(b));
}

// frexp(x).exp for finite x > 0, subnormals included.
fn fb_exponent_$F(x: $F) -> i32 {
    if (x < fb_min_normal_$F()) { return i32(frexp(x * $F(18014398509481984.0)).exp) - 54; }
    return i32(frexp(x).exp);
}

// C fmod (exact): long division by |b| * 2^k, each subtraction exact.
fn fb_fmod_$F(a: $F, b: $F) -> $F {
    if (fb_isnan_$F(a) || fb_isnan_$F(b) || fb_isinf_$F(a) || b == $F(0.0)) {
        return fb_nan_$F();
    }
    let ax = abs(a);
    let bx = abs(b);
    if (ax < bx || fb_isinf_$F(b)) {
        return a;
    }
    var r = ax;
    let eb = fb_exponent_$F(bx);
    for (var i = 0; i < 2200 && r >= bx; i++) {
        // t = bx * 2^k with k = exponent(r) - exponent(bx), by exact power-of-two products
        // (ldexp and frexp are not trusted on subnormals).
        let k = fb_exponent_$F(r) - eb;
        let k1 = k / 3;
        var t = bx * ldexp($F(1.0), k1) * ldexp($F(1.0), k1) * ldexp($F(1.0), k - 2 * k1);
        if (t > r) { t = t * $F(0.5); }
        r = r - t;
    }
    return select(r, -r, a < $F(0.0) || (a == $F(0.0) && fb_signbit_$F(a)));
}

// npy_remainder: the result has the sign of the divisor; by zero: NaN.
fn fb_rem_$F(a: $F, b: $F) -> $F {
    let m = fb_fmod_$F(a, b);
    if (b == $F(0.0)) { return m; }
    if (!(m == $F(0.0))) {
        if ((b < $F(0.0)) != (m < $F(0.0))) { return m + b; }
        return m;
    }
    return fb_copysign_$F($F(0.0), b);
}

// npy_floor_divide.
fn fb_floordiv_$F(a: $F, b: $F) -> $F {
    if (b == $F(0.0)) { return a / b; }
    let m = fb_fmod_$F(a, b);
    var div = (a - m) / b;
    if (!(m == $F(0.0)) && ((b < $F(0.0)) != (m < $F(0.0)))) { div = div - $F(1.0); }
    if (!(div == $F(0.0))) {
        var f = floor(div);
        if (div - f > $F(0.5)) { f = f + $F(1.0); }
        return f;
    }
    return fb_copysign_$F($F(0.0), a / b);
}

// astype(int32): NaN and out-of-range -> INT32_MIN (NumPy on x86-64).
fn fb_to_i32_$F(x: $F) -> i32 {
    let t = trunc(x);
    if (t >= $F(-2147483648.0) && t < $F(2147483648.0)) { return i32(t); }
    return i32(-2147483647) - 1;
}
