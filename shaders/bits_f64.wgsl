// Bit-level helpers for f64 (with SHADER_INT64: exact bit access through u64).
fn fb_max_f64() -> f64 { return 1.7976931348623157e308; }
fn fb_min_normal_f64() -> f64 { return 2.2250738585072014e-308; }
fn fb_nan_f64() -> f64 { return bitcast<f64>(0x7ff8000000000000lu); }
fn fb_signbit_f64(x: f64) -> bool { return (bitcast<u64>(x) >> 63u) != 0lu; }

fn fb_nextafter_f64(a: f64, b: f64) -> f64 {
    if (fb_isnan_f64(a) || fb_isnan_f64(b)) { return a + b; }
    if (a == b) { return b; }
    if (a == 0.0) { return select(bitcast<f64>(1lu), bitcast<f64>(0x8000000000000001lu), b < 0.0); }
    let u = bitcast<u64>(a);
    if ((a < b) == (a > 0.0)) { return bitcast<f64>(u + 1lu); }
    return bitcast<f64>(u - 1lu);
}
fn fb_bits_o_f64(x: f64) -> f64 { return bitcast<f64>(bitcast<u64>(x) + u64(P[4] - 1u)); }
