// Bit-level helpers for f32.
fn fb_max_f32() -> f32 { return 3.4028234663852886e38; }
fn fb_min_normal_f32() -> f32 { return 1.1754943508222875e-38; }
fn fb_nan_f32() -> f32 { return bitcast<f32>(0x7fc00000u); }
fn fb_signbit_f32(x: f32) -> bool { return (bitcast<u32>(x) & 0x80000000u) != 0u; }

fn fb_nextafter_f32(a: f32, b: f32) -> f32 {
    if (fb_isnan_f32(a) || fb_isnan_f32(b)) { return a + b; }
    if (a == b) { return b; }
    if (a == 0.0) { return select(bitcast<f32>(1u), bitcast<f32>(0x80000001u), b < 0.0); }
    let u = bitcast<u32>(a);
    // Moving away from zero increments the magnitude bits.
    if ((a < b) == (a > 0.0)) { return bitcast<f32>(u + 1u); }
    return bitcast<f32>(u - 1u);
}
// The barrier adds the opaque zero to the bits rather than xoring it: two xors of the same
// zero cancel (a barrier on a barrier was folded away, exposing `x * 0.0`).
fn fb_bits_o_f32(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) + (P[4] - 1u)); }
