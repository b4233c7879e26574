// float -> int64 cast (needs SHADER_INT64). `$F` is f32 or f64.
fn fb_to_i64_$F(x: $F) -> i64 {
    let t = trunc(x);
    if (t >= $F(-9.223372036854775808e18) && t < $F(9.223372036854775808e18)) { return i64(t); }
    return i64(-9223372036854775807) - i64(1);
}
