//! Building blocks the trigonometric, inverse and power expansions share: exact sums, bool
//! logic, mantissa truncation, exact power-of-two scaling and the rare-lane fallback.
use super::Emit;
use crate::dtype::DType;
use crate::kir::{Call, Inst, Value};
use crate::ops::{BinaryOp, UnaryOp};

impl Emit<'_> {
    /// `s + e = a + b` exactly (Knuth's TwoSum: no condition on the magnitudes).
    pub(super) fn two_sum(&mut self, a: Value, b: Value) -> (Value, Value) {
        let s = self.add(a, b);
        let bv = self.sub(s, a);
        let av = self.sub(s, bv);
        let br = self.sub(b, bv);
        let ar = self.sub(a, av);
        (s, self.add(ar, br))
    }

    /// `s + e = a + b` exactly when `|a| >= |b|` (or `a` is zero): Dekker's Fast2Sum.
    pub(super) fn fast_two_sum(&mut self, a: Value, b: Value) -> (Value, Value) {
        let s = self.add(a, b);
        let t = self.sub(s, a);
        (s, self.sub(b, t))
    }

    /// Logical not of a bool value.
    pub(super) fn not(&mut self, c: Value) -> Value {
        self.b.push(
            Inst::Unary {
                op: UnaryOp::Not,
                arg: c,
            },
            DType::Bool,
        )
    }
    pub(super) fn and(&mut self, a: Value, b: Value) -> Value {
        self.bin(BinaryOp::And, a, b)
    }
    pub(super) fn or(&mut self, a: Value, b: Value) -> Value {
        self.bin(BinaryOp::Or, a, b)
    }
    pub(super) fn is_nan(&mut self, x: Value) -> Value {
        self.bin(BinaryOp::Ne, x, x)
    }

    /// `x` with the low half of its mantissa cleared (fdlibm's `SET_LOW_WORD(x, 0)` for f64;
    /// the low 12 bits for f32): the result has at most 21 (f64) / 12 (f32) significant bits,
    /// so products of two such values are exact.
    pub(super) fn trunc_mantissa(&mut self, x: Value) -> Value {
        let mask = self.ci(if self.f64() {
            -(1i64 << 32)
        } else {
            0xfffff000u32 as i32 as i64
        });
        let b = self.bits(x);
        let m = self.bin(BinaryOp::And, b, mask);
        self.float(m)
    }

    /// `2^k` for a small integer-valued float `k` as two factors whose product is `2^k`, each
    /// a normal power of two (`k` within twice the normal exponent range): multiplying by the
    /// first and then the second rounds once, even into the subnormal range.
    pub(super) fn pow2_split(&mut self, k: Value) -> (Value, Value) {
        let half = self.c(0.5);
        let kh = self.mul(k, half);
        let k1 = self.unary(UnaryOp::Floor, kh);
        let k2 = self.sub(k, k1);
        (self.pow2(k1), self.pow2(k2))
    }

    /// `value`, except in the lanes where `cond` holds: there, the scalar `op(x)` of
    /// [`crate::semantics`] (see [`Inst::Fallback`]).
    pub(super) fn fallback_unary(
        &mut self,
        cond: Value,
        value: Value,
        op: UnaryOp,
        x: Value,
    ) -> Value {
        self.b.push(
            Inst::Fallback {
                cond,
                value,
                call: Call::Unary(op, x),
            },
            self.t,
        )
    }

    /// An integer-valued float `n` modulo 4, as a float in `0..4` (exact for |n| < 2^52).
    pub(super) fn mod4(&mut self, n: Value) -> Value {
        let q = self.c(0.25);
        let nq = self.mul(n, q);
        let f = self.unary(UnaryOp::Floor, nq);
        let four = self.c(4.0);
        let f4 = self.mul(f, four);
        self.sub(n, f4)
    }

    /// `hi + lo = a * b` exactly (Dekker's product, no fused multiply-add needed).
    pub(super) fn two_prod(&mut self, a: Value, b: Value) -> (Value, Value) {
        let p = self.mul(a, b);
        let (ah, al) = self.split(a);
        let (bh, bl) = self.split(b);
        let hh = self.mul(ah, bh);
        let e = self.sub(hh, p);
        let hl = self.mul(ah, bl);
        let e = self.add(e, hl);
        let lh = self.mul(al, bh);
        let e = self.add(e, lh);
        let ll = self.mul(al, bl);
        let e = self.add(e, ll);
        (p, e)
    }

    /// Veltkamp's split of `a` into two halves with half the mantissa each.
    pub(super) fn split(&mut self, a: Value) -> (Value, Value) {
        let f = self.c(if self.f64() { 134217729.0 } else { 4097.0 });
        let c = self.mul(f, a);
        let d = self.sub(c, a);
        let hi = self.sub(c, d);
        let lo = self.sub(a, hi);
        (hi, lo)
    }

    /// `t / (t + k)` with the rounding errors of the sum and of the quotient corrected (one
    /// Newton step on exact residuals), so the result is within about half an ULP of the
    /// quotient of the exact operands.
    pub(super) fn div_exact_den(&mut self, t: Value, k: Value) -> Value {
        // d + de = t + k exactly (TwoSum).
        let d = self.add(t, k);
        let bv = self.sub(d, t);
        let av = self.sub(d, bv);
        let br = self.sub(k, bv);
        let ar = self.sub(t, av);
        let de = self.add(ar, br);
        let q = self.div(t, d);
        // r = t - q (d + de), from the exact product q d.
        let (p, pe) = self.two_prod(q, d);
        let r = self.sub(t, p);
        let r = self.sub(r, pe);
        let qde = self.mul(q, de);
        let r = self.sub(r, qde);
        let corr = self.div(r, d);
        self.add(q, corr)
    }
}
