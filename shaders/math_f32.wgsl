// f32 transcendentals from WGSL built-ins, used only on adapters without SHADER_F64 (with it,
// f32 functions are computed by the f64 polyfills and rounded once). WGSL's accuracy bounds
// apply (exp/exp2: 3 + 2|x| ULP; log: 3 ULP for x outside [0.5, 2], otherwise 2^-21 absolute);
// real devices differ.
fn fb_exp_f32(x: f32) -> f32 { return exp(x); }
fn fb_log_f32(x: f32) -> f32 { return select(log(x), fb_nan_f32(), x < 0.0); }
fn fb_log2_f32(x: f32) -> f32 { return select(log2(x), fb_nan_f32(), x < 0.0); }
fn fb_log10_f32(x: f32) -> f32 { return fb_log_f32(x) * 0.43429448190325182765; }
fn fb_expm1_f32(x: f32) -> f32 {
    let u = fb_o_f32(exp(x));
    if (u == 1.0) { return x; }
    let um1 = u - 1.0;
    if (um1 == -1.0 || fb_isinf_f32(u)) { return um1; }
    return um1 * (x / log(u));
}
fn fb_log1p_f32(x: f32) -> f32 {
    if (x < -1.0) { return fb_nan_f32(); }
    let u = fb_o_f32(1.0 + x);
    if (u == 1.0) { return x; }
    if (fb_isinf_f32(u)) { return u; }
    return log(u) * (x / (u - 1.0));
}
fn fb_sin_f32(x: f32) -> f32 { return sin(x); }
fn fb_cos_f32(x: f32) -> f32 { return cos(x); }
fn fb_tan_f32(x: f32) -> f32 { return tan(x); }
fn fb_asin_f32(x: f32) -> f32 { return select(asin(x), fb_nan_f32(), abs(x) > 1.0); }
fn fb_acos_f32(x: f32) -> f32 { return select(acos(x), fb_nan_f32(), abs(x) > 1.0); }
fn fb_atan_f32(x: f32) -> f32 { return atan(x); }
fn fb_atan2_f32(y: f32, x: f32) -> f32 { return atan2(y, x); }
fn fb_sinh_f32(x: f32) -> f32 { return sinh(x); }
fn fb_cosh_f32(x: f32) -> f32 { return cosh(x); }
fn fb_tanh_f32(x: f32) -> f32 { return tanh(x); }
fn fb_asinh_f32(x: f32) -> f32 { return asinh(x); }
fn fb_acosh_f32(x: f32) -> f32 { return select(acosh(x), fb_nan_f32(), x < 1.0); }
fn fb_atanh_f32(x: f32) -> f32 {
    if (abs(x) > 1.0) { return fb_nan_f32(); }
    return atanh(x);
}
fn fb_pow_f32(x: f32, y: f32) -> f32 {
    if (y == 0.0 || x == 1.0) { return 1.0; }
    if (fb_isnan_f32(x) || fb_isnan_f32(y)) { return x + y; }
    let yi = floor(y) == y;
    if (x < 0.0 && !yi) { return fb_nan_f32(); }
    let odd = yi && abs(y) < 16777216.0 && floor(y * 0.5) * 2.0 != y;
    let r = pow(abs(x), y);
    return select(r, -r, x < 0.0 && odd);
}
fn fb_hypot_f32(a: f32, b: f32) -> f32 {
    if (fb_isinf_f32(a) || fb_isinf_f32(b)) { return bitcast<f32>(0x7f800000u); }
    let big = max(abs(a), abs(b));
    if (big == 0.0 || fb_isnan_f32(a) || fb_isnan_f32(b)) { return big + a + b; }
    let p = a / big;
    let q = b / big;
    return big * sqrt(p * p + q * q);
}
