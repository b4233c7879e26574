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
}
