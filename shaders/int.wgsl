// NumPy integer semantics for one integer type: `$I` is i32 or i64, `$BITS` its width.
// Arithmetic wraps (WGSL's concrete integer arithmetic wraps).

fn fb_floordiv_$I(a: $I, b: $I) -> $I {
    if (b == $I(0)) { return $I(0); }
    if (b == $I(-1)) { return $I(0) - a; }
    let q = a / b;
    let r = a - q * b;
    // Signs differ <=> the xor is negative. (lavapipe miscompiles `(a < 0) != (b < 0)` for an
    // i64 `a` sign-extended from i32: checked by tests/gpu.rs.)
    if (r != $I(0) && (a ^ b) < $I(0)) { return q - $I(1); }
    return q;
}

fn fb_rem_$I(a: $I, b: $I) -> $I {
    if (b == $I(0) || b == $I(-1)) { return $I(0); }
    let r = a - (a / b) * b;
    if (r != $I(0) && (r ^ b) < $I(0)) { return r + b; }
    return r;
}

fn fb_fmod_$I(a: $I, b: $I) -> $I {
    if (b == $I(0) || b == $I(-1)) { return $I(0); }
    return a - (a / b) * b;
}

fn fb_pow_$I(a: $I, b: $I) -> $I {
    if (b < $I(0)) {
        if (a == $I(1)) { return $I(1); }
        if (a == $I(-1)) { return select($I(-1), $I(1), (b & $I(1)) == $I(0)); }
        return $I(0);
    }
    var base = a;
    var e = b;
    var acc = $I(1);
    for (var i = 0; i < $BITS && e > $I(0); i++) {
        if ((e & $I(1)) == $I(1)) { acc = acc * base; }
        base = base * base;
        e = e >> 1u;
    }
    return acc;
}

fn fb_shl_$I(a: $I, b: $I) -> $I {
    if (b < $I(0) || b >= $I($BITS)) { return $I(0); }
    return a << u32(b);
}

fn fb_shr_$I(a: $I, b: $I) -> $I {
    if (b < $I(0) || b >= $I($BITS)) { return select($I(0), $I(-1), a < $I(0)); }
    return a >> u32(b);
}

fn fb_sign_$I(x: $I) -> $I {
    return select(select($I(0), $I(-1), x < $I(0)), $I(1), x > $I(0));
}

fn fb_abs_$I(x: $I) -> $I {
    return select(x, $I(0) - x, x < $I(0));
}

fn fb_max_$I(a: $I, b: $I) -> $I {
    return select(b, a, a >= b);
}

fn fb_min_$I(a: $I, b: $I) -> $I {
    return select(b, a, a <= b);
}
