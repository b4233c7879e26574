//! Kernel IR: the one small language both backends compile.
//!
//! A [`Kernel`] is a single loop over an iteration space (the output's shape). Its body is typed
//! scalar SSA: value `vN` is the result of instruction `N`. Instructions read array inputs at the
//! current index ([`Inst::Load`]: the backend applies each input's strides, 0 for broadcast
//! dimensions), constants, and element-wise operations; the kernel ends in one or more
//! [`Output`]s: stores into fresh output arrays, or reductions (multi-output fusion: `min(x)`,
//! `max(x)` and `sum(x)` in one pass over `x`).
//!
//! A reduction combines its value over the *reduced axes* of the iteration space, which the
//! caller gives at run time (all axes: one accumulator, a 0-d result; some axes: one
//! accumulator per position of the kept axes, a C-contiguous result of the kept shape).
//!
//! Invariants (checked by [`Kernel::verify`], which every backend calls before code generation):
//! - operands are defined before use;
//! - binary operands have the same dtype, and that dtype is the one the operator computes in
//!   (promotion and casts were made explicit by the optimizer);
//! - comparisons produce `bool`, `select` takes a `bool` condition;
//! - a [`Inst::Fallback`] takes a `bool` condition and a value of its own float type, and its
//!   [`Call`]'s operands have the dtype the call's operator computes in, the operator producing
//!   the instruction's type (the same typing as the `Unary`/`Binary` instruction it stands for);
//! - the reduction's operand is in the reduction's accumulator dtype;
//! - float16 is a storage type: only loads, constants, casts, stores and `nextafter` (one
//!   float16 step, which has no float32 form) touch it; its arithmetic is float32 with a
//!   rounding cast after each operation (the optimizer lowers it so, `opt/lower.rs`), and a
//!   reduction never accumulates it;
//! - a kernel has at least one output, and its outputs are all stores or all reductions.
//!
//! Rare-lane fallbacks. A vector math expansion ([`crate::mathlib`]) has no branches, so a
//! case it cannot afford in every lane (the Payne-Hanek reduction of `sin` for huge arguments)
//! is left, on a target that can call scalar functions (the CPU JIT), to [`Inst::Fallback`]:
//! "`value`, except in the lanes where `cond` holds, where it is the scalar function [`Call`]".
//! Its meaning is per element, like every other instruction, so the interpreter computes
//! `cond ? call : value` directly; the CPU code generator tests whether any lane of the vector
//! needs the call (one vector test and a branch) and only then calls the scalar function
//! ([`crate::semantics`]) for those lanes. `value` must be defined (finite garbage is fine) in
//! the lanes where `cond` holds: it is discarded there. The WGSL generator rejects it: for the
//! GPU the expansions compute every lane in the kernel.
//!
//! [`Inst::Fma`] (`a * b + c`, one rounding) is exact on every backend that accepts it: the
//! interpreter computes it with `mul_add`, the CPU JIT with the x86 FMA instructions (the math
//! expansions emit it only when the target has them), and the WGSL generator rejects it
//! (WGSL's `fma` may or may not fuse).
//!
//! [`Inst::Lookup`] reads entry `index & (len - 1)` of one of the fixed constant tables
//! ([`Table`], power-of-two lengths): the mask makes every index safe, whatever the value.
//! The interpreter indexes the table; the CPU JIT loads each lane's entry from the table's
//! `'static` address (no vector gather at 128 bits); the WGSL generator declares the table as
//! a constant array in the shader.
//!
//! The IR prints as text (`v2 = mul.f64 v1, v0`); golden tests compare that text.
mod tables;

pub use crate::dtype::Const;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use std::collections::HashMap;
use std::fmt::{self, Write};
use std::hash::{Hash, Hasher};

/// An SSA value: the result of the instruction with the same index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(pub u32);

impl Value {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The scalar function an [`Inst::Fallback`] calls in the lanes that need it: a unary or
/// binary operator applied to values of the kernel, with the operator's [`crate::semantics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Unary(UnaryOp, Value),
    Binary(BinaryOp, Value, Value),
}

impl Call {
    /// The call's operands, in order.
    pub fn args(self) -> Vec<Value> {
        match self {
            Call::Unary(_, a) => vec![a],
            Call::Binary(_, a, b) => vec![a, b],
        }
    }
    /// The same call with its operands renamed by `f`.
    pub fn map(self, mut f: impl FnMut(Value) -> Value) -> Call {
        match self {
            Call::Unary(op, a) => Call::Unary(op, f(a)),
            Call::Binary(op, a, b) => Call::Binary(op, f(a), f(b)),
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Unary(op, a) => write!(f, "{op}({a})"),
            Call::Binary(op, a, b) => write!(f, "{op}({a}, {b})"),
        }
    }
}

impl Inst {
    /// The values the instruction reads, in order.
    pub fn operands(&self) -> Vec<Value> {
        match *self {
            Inst::Load { .. } | Inst::Const(_) => vec![],
            Inst::Unary { arg, .. }
            | Inst::Cast { arg }
            | Inst::Bitcast { arg }
            | Inst::Lookup { index: arg, .. } => vec![arg],
            Inst::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => vec![cond, on_true, on_false],
            Inst::Fallback { cond, value, call } => {
                let mut v = vec![cond, value];
                v.extend(call.args());
                v
            }
            Inst::Fma { a, b, c } => vec![a, b, c],
        }
    }
}

/// One instruction. Its result type is stored beside it in [`InstData`].
#[derive(Debug, Clone, Copy)]
pub enum Inst {
    /// Read input `input` at the current index.
    Load {
        input: u32,
    },
    Const(Const),
    Unary {
        op: UnaryOp,
        arg: Value,
    },
    Binary {
        op: BinaryOp,
        lhs: Value,
        rhs: Value,
    },
    /// `cond ? on_true : on_false`, element-wise.
    Select {
        cond: Value,
        on_true: Value,
        on_false: Value,
    },
    /// Convert `arg` to the instruction's type with NumPy's `astype` semantics.
    Cast {
        arg: Value,
    },
    /// Reinterpret the bits of `arg` as the instruction's type (f64 <-> i64, f32 <-> i32).
    /// Not produced from user expressions: only the math expansions ([`crate::mathlib`]) use it.
    Bitcast {
        arg: Value,
    },
    /// `cond ? call : value`, element-wise, for a `call` that is rarely needed: see the module
    /// docs (rare-lane fallbacks). Not produced from user expressions: only the math expansions
    /// use it.
    Fallback {
        cond: Value,
        value: Value,
        call: Call,
    },
    /// `a * b + c` rounded once (IEEE 754 fusedMultiplyAdd), on floats of the instruction's
    /// type. Not produced from user expressions: only the math expansions use it, and only for
    /// a backend that has an exact fused instruction ([`crate::mathlib::Target`]).
    Fma {
        a: Value,
        b: Value,
        c: Value,
    },
    /// Entry `index & (len - 1)` of the constant table `table` (a power-of-two length: the
    /// mask keeps every index in bounds), as the instruction's type; `index` is an int64 or
    /// an int32. Not
    /// produced from user expressions: only the math expansions use it, and only for a backend
    /// that reads tables ([`crate::mathlib::Target`]).
    Lookup {
        table: Table,
        index: Value,
    },
}

/// A constant table of the math expansions ([`Inst::Lookup`]); the entries are in
/// `src/kir/tables.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `2^(j/128)` rounded to float64, j = 0..128.
    Exp2Hi,
    /// `2^(j/128)` minus its `Exp2Hi` entry, rounded to float64.
    Exp2Lo,
    /// The binary digits of `2/pi`, 32 per int64 entry, after 64 zero bits (the float64
    /// Payne-Hanek reduction of targets without scalar calls).
    TwoOverPi32,
    /// The binary digits of `2/pi`, 16 per int32 entry, after 16 zero bits (the float32
    /// Payne-Hanek reduction).
    TwoOverPi16,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 4] = [
        Table::Exp2Hi,
        Table::Exp2Lo,
        Table::TwoOverPi32,
        Table::TwoOverPi16,
    ];
    /// The entries, as the bits of the entry type ([`Table::dtype`]) in the low bits of each
    /// `u64`; the length is a power of two.
    pub fn entries(self) -> &'static [u64] {
        match self {
            Table::Exp2Hi => &tables::EXP2_128_HI,
            Table::Exp2Lo => &tables::EXP2_128_LO,
            Table::TwoOverPi32 => &tables::TWO_OVER_PI_32,
            Table::TwoOverPi16 => &tables::TWO_OVER_PI_16,
        }
    }
    /// The type of an entry.
    pub fn dtype(self) -> DType {
        match self {
            Table::Exp2Hi | Table::Exp2Lo => DType::F64,
            Table::TwoOverPi32 => DType::I64,
            Table::TwoOverPi16 => DType::I32,
        }
    }
    /// Entry `index`, masked into range as [`Inst::Lookup`] specifies.
    pub fn get(self, index: i64) -> Const {
        let e = self.entries();
        let bits = e[(index as usize) & (e.len() - 1)];
        match self.dtype() {
            DType::I64 => Const::I64(bits as i64),
            DType::I32 => Const::I32(bits as u32 as i32),
            _ => Const::F64(f64::from_bits(bits)),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Table::Exp2Hi => "exp2_128_hi",
            Table::Exp2Lo => "exp2_128_lo",
            Table::TwoOverPi32 => "two_over_pi_32",
            Table::TwoOverPi16 => "two_over_pi_16",
        }
    }
}

impl PartialEq for Inst {
    fn eq(&self, other: &Self) -> bool {
        use Inst::*;
        match (self, other) {
            (Load { input: a }, Load { input: b }) => a == b,
            (Const(a), Const(b)) => a.same(*b),
            (Unary { op: o1, arg: a1 }, Unary { op: o2, arg: a2 }) => o1 == o2 && a1 == a2,
            (
                Binary {
                    op: o1,
                    lhs: l1,
                    rhs: r1,
                },
                Binary {
                    op: o2,
                    lhs: l2,
                    rhs: r2,
                },
            ) => o1 == o2 && l1 == l2 && r1 == r2,
            (
                Select {
                    cond: c1,
                    on_true: t1,
                    on_false: f1,
                },
                Select {
                    cond: c2,
                    on_true: t2,
                    on_false: f2,
                },
            ) => c1 == c2 && t1 == t2 && f1 == f2,
            (Cast { arg: a }, Cast { arg: b }) => a == b,
            (Bitcast { arg: a }, Bitcast { arg: b }) => a == b,
            (
                Fallback {
                    cond: c1,
                    value: v1,
                    call: f1,
                },
                Fallback {
                    cond: c2,
                    value: v2,
                    call: f2,
                },
            ) => c1 == c2 && v1 == v2 && f1 == f2,
            (
                Fma {
                    a: a1,
                    b: b1,
                    c: c1,
                },
                Fma {
                    a: a2,
                    b: b2,
                    c: c2,
                },
            ) => a1 == a2 && b1 == b2 && c1 == c2,
            (
                Lookup {
                    table: t1,
                    index: i1,
                },
                Lookup {
                    table: t2,
                    index: i2,
                },
            ) => t1 == t2 && i1 == i2,
            _ => false,
        }
    }
}
impl Eq for Inst {}
impl Hash for Inst {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Inst::Load { input } => input.hash(state),
            Inst::Const(c) => c.hash(state),
            Inst::Unary { op, arg } => (op, arg).hash(state),
            Inst::Binary { op, lhs, rhs } => (op, lhs, rhs).hash(state),
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => (cond, on_true, on_false).hash(state),
            Inst::Cast { arg } | Inst::Bitcast { arg } => arg.hash(state),
            Inst::Fallback { cond, value, call } => (cond, value, call).hash(state),
            Inst::Fma { a, b, c } => (a, b, c).hash(state),
            Inst::Lookup { table, index } => (table, index).hash(state),
        }
    }
}

/// An instruction and the dtype of its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstData {
    pub inst: Inst,
    pub ty: DType,
}

/// What the kernel produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    /// Write `value` at the current index of a fresh, C-contiguous output array.
    Store { value: Value },
    /// Combine `value` over the reduced axes of the iteration space (see the module docs).
    Reduce { op: ReduceOp, value: Value },
}

impl Output {
    pub fn value(self) -> Value {
        match self {
            Output::Store { value } | Output::Reduce { value, .. } => value,
        }
    }
}

/// A fused element-wise kernel (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kernel {
    /// Dtypes of the array inputs, in the order of `Load { input }` indices.
    pub inputs: Vec<DType>,
    pub insts: Vec<InstData>,
    /// One or more outputs, all stores or all reductions.
    pub outputs: Vec<Output>,
}

impl Kernel {
    /// Type of a value.
    pub fn ty(&self, v: Value) -> DType {
        self.insts[v.index()].ty
    }
    /// The first output (every kernel has one).
    pub fn output(&self) -> Output {
        self.outputs[0]
    }
    /// The dtype of the first output's array.
    pub fn output_dtype(&self) -> DType {
        self.dtype_of(self.outputs[0])
    }
    /// The dtype of an output's array (a reduction's result dtype: int64 for `argmax`).
    pub fn dtype_of(&self, o: Output) -> DType {
        match o {
            Output::Store { value } => self.ty(value),
            Output::Reduce { op, value } => op
                .signature(self.ty(value))
                .map(|(_, r)| r)
                .unwrap_or(self.ty(value)),
        }
    }
    /// Dtypes of all outputs, in order.
    pub fn output_dtypes(&self) -> Vec<DType> {
        self.outputs.iter().map(|o| self.dtype_of(*o)).collect()
    }
    pub fn is_reduction(&self) -> bool {
        matches!(self.outputs.first(), Some(Output::Reduce { .. }))
    }
    /// A stable 64-bit key of the kernel's structure, used by the compiled-kernel caches.
    pub fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }

    /// Check the invariants listed in the module docs.
    pub fn verify(&self) -> Result<()> {
        let err = |i: usize, msg: String| {
            Err(Error::InvalidKernel {
                message: format!("v{i}: {msg}"),
            })
        };
        for (i, d) in self.insts.iter().enumerate() {
            let defined = |v: Value| v.index() < i;
            let ty = |v: Value| self.insts[v.index()].ty;
            match d.inst {
                Inst::Load { input } => match self.inputs.get(input as usize) {
                    None => return err(i, format!("load of undeclared input in{input}")),
                    Some(t) if *t != d.ty => {
                        return err(i, format!("load.{} of input in{input}: {t}", d.ty.short()))
                    }
                    _ => {}
                },
                Inst::Const(c) => {
                    if c.dtype() != d.ty {
                        return err(i, format!("constant {c} is not {}", d.ty));
                    }
                }
                Inst::Unary { op, arg } => {
                    if !defined(arg) {
                        return err(i, format!("use of {arg} before definition"));
                    }
                    match op.signature(ty(arg)) {
                        Ok((c, r)) if c == ty(arg) && r == d.ty => {}
                        _ => return err(i, format!("{op} of {} cannot produce {}", ty(arg), d.ty)),
                    }
                }
                Inst::Binary { op, lhs, rhs } => {
                    if !defined(lhs) || !defined(rhs) {
                        return err(i, "use of a value before its definition".into());
                    }
                    if ty(lhs) != ty(rhs) {
                        return err(i, format!("{op} of {} and {}", ty(lhs), ty(rhs)));
                    }
                    match op.signature(ty(lhs)) {
                        Ok((c, r)) if c == ty(lhs) && r == d.ty => {}
                        _ => return err(i, format!("{op} of {} cannot produce {}", ty(lhs), d.ty)),
                    }
                }
                Inst::Select {
                    cond,
                    on_true,
                    on_false,
                } => {
                    if !defined(cond) || !defined(on_true) || !defined(on_false) {
                        return err(i, "use of a value before its definition".into());
                    }
                    if ty(cond) != DType::Bool || ty(on_true) != d.ty || ty(on_false) != d.ty {
                        return err(
                            i,
                            "select needs a bool condition and two operands of its type".into(),
                        );
                    }
                }
                Inst::Cast { arg } => {
                    if !defined(arg) {
                        return err(i, format!("use of {arg} before definition"));
                    }
                }
                Inst::Bitcast { arg } => {
                    if !defined(arg) {
                        return err(i, format!("use of {arg} before definition"));
                    }
                    let ok = matches!(
                        (ty(arg), d.ty),
                        (DType::F64, DType::I64)
                            | (DType::I64, DType::F64)
                            | (DType::F32, DType::I32)
                            | (DType::I32, DType::F32)
                    );
                    if !ok {
                        return err(i, format!("bitcast from {} to {}", ty(arg), d.ty));
                    }
                }
                Inst::Fallback { cond, value, call } => {
                    if !defined(cond) || !defined(value) || !call.args().into_iter().all(defined) {
                        return err(i, "use of a value before its definition".into());
                    }
                    if ty(cond) != DType::Bool || ty(value) != d.ty || !d.ty.is_float() {
                        return err(
                            i,
                            "fallback needs a bool condition and a float value of its type".into(),
                        );
                    }
                    let typed = match call {
                        Call::Unary(op, a) => op.signature(ty(a)).map(|s| s == (ty(a), d.ty)),
                        Call::Binary(op, a, b) => op
                            .signature(ty(a))
                            .map(|s| ty(a) == ty(b) && s == (ty(a), d.ty)),
                    };
                    if !matches!(typed, Ok(true)) {
                        return err(i, format!("fallback call {call} cannot produce {}", d.ty));
                    }
                }
                Inst::Fma { a, b, c } => {
                    if !defined(a) || !defined(b) || !defined(c) {
                        return err(i, "use of a value before its definition".into());
                    }
                    if !d.ty.is_float() || [a, b, c].iter().any(|v| ty(*v) != d.ty) {
                        return err(i, "fma needs three float operands of its type".into());
                    }
                }
                Inst::Lookup { table, index } => {
                    if !defined(index) {
                        return err(i, format!("use of {index} before definition"));
                    }
                    if !matches!(ty(index), DType::I64 | DType::I32) || d.ty != table.dtype() {
                        return err(
                            i,
                            format!(
                                "lookup needs an integer index and has type {}",
                                table.dtype()
                            ),
                        );
                    }
                }
            }
            // float16 is a storage type here: loaded, stored, converted, and stepped by
            // `nextafter` (which has no float32 form); its arithmetic is float32, rounded by a
            // cast after each operation (the optimizer lowers it so).
            let f16_ok = matches!(
                d.inst,
                Inst::Load { .. }
                    | Inst::Const(_)
                    | Inst::Cast { .. }
                    | Inst::Binary {
                        op: BinaryOp::Nextafter,
                        ..
                    }
            );
            if !f16_ok
                && (d.ty == DType::F16 || d.inst.operands().iter().any(|v| ty(*v) == DType::F16))
            {
                return err(i, "float16 values are only loaded, stored and cast".into());
            }
        }
        if self.outputs.is_empty() {
            return Err(Error::InvalidKernel {
                message: "a kernel needs an output".into(),
            });
        }
        let reduce = self.is_reduction();
        for o in &self.outputs {
            if matches!(o, Output::Reduce { .. }) != reduce {
                return Err(Error::InvalidKernel {
                    message: "outputs mix stores and reductions".into(),
                });
            }
            let value = o.value();
            if value.index() >= self.insts.len() {
                return Err(Error::InvalidKernel {
                    message: format!("output uses undefined {value}"),
                });
            }
            if let Output::Reduce { op, value } = *o {
                match op.signature(self.ty(value)) {
                    Ok((c, _)) if c == self.ty(value) && c != DType::F16 => {}
                    _ => {
                        return Err(Error::InvalidKernel {
                            message: format!("{op} cannot accumulate {}", self.ty(value)),
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Check run-time arguments against the kernel: one input per declared input, of its dtype,
    /// each broadcastable to `out_shape` (every backend's `run` starts here).
    pub fn check_args(
        &self,
        inputs: &[crate::array::ArgView<'_>],
        out_shape: &[usize],
    ) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::ArgumentCount {
                expected: self.inputs.len(),
                found: inputs.len(),
                params: vec![],
            });
        }
        for (i, (a, t)) in inputs.iter().zip(&self.inputs).enumerate() {
            if a.dtype() != *t {
                return Err(Error::DtypeMismatch {
                    name: format!("input {i}"),
                    expected: *t,
                    found: a.dtype(),
                });
            }
            let s = a.shape();
            let fits = s.len() <= out_shape.len()
                && s.iter()
                    .rev()
                    .zip(out_shape.iter().rev())
                    .all(|(&d, &o)| d == o || d == 1);
            if !fits {
                return Err(Error::ShapeMismatch {
                    lhs: s.to_vec(),
                    rhs: out_shape.to_vec(),
                });
            }
        }
        Ok(())
    }

    /// Bytes one evaluation moves, given each input's element count and each output's
    /// element count (reductions write their results too; a full reduction writes one element).
    pub fn bytes_moved(&self, input_lens: &[usize], output_lens: &[usize]) -> u64 {
        let reads: u64 = self
            .inputs
            .iter()
            .zip(input_lens)
            .map(|(t, len)| (t.size() * len) as u64)
            .sum();
        let writes: u64 = self
            .output_dtypes()
            .iter()
            .zip(output_lens)
            .map(|(t, len)| (t.size() * len) as u64)
            .sum();
        reads + writes
    }

    /// Check the reduced axes a caller passes for an iteration space of rank `ndim`: sorted,
    /// distinct, in range, and empty for a kernel of stores.
    pub fn check_axes(&self, axes: &[usize], ndim: usize) -> Result<()> {
        if !self.is_reduction() && !axes.is_empty() {
            return Err(Error::Axis {
                message: "a kernel of stores reduces no axes".into(),
            });
        }
        if axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= ndim) {
            return Err(Error::Axis {
                message: format!("reduced axes {axes:?} must be sorted, distinct and below {ndim}"),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ins: Vec<String> = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, t)| format!("in{i}: {}", t.short()))
            .collect();
        let outs: Vec<String> = self
            .outputs
            .iter()
            .map(|o| match *o {
                Output::Store { .. } => format!("store {}", self.dtype_of(*o).short()),
                Output::Reduce { op, .. } => format!("reduce.{op} {}", self.dtype_of(*o).short()),
            })
            .collect();
        writeln!(f, "kernel({}) -> {} {{", ins.join(", "), outs.join(", "))?;
        for (i, d) in self.insts.iter().enumerate() {
            let mut line = String::new();
            let t = d.ty.short();
            match d.inst {
                Inst::Load { input } => write!(line, "load.{t} in{input}")?,
                Inst::Const(c) => write!(line, "const.{t} {c}")?,
                Inst::Unary { op, arg } => write!(line, "{op}.{t} {arg}")?,
                Inst::Binary { op, lhs, rhs } => {
                    // Comparisons are printed with their operand type (`lt.f64`).
                    let ot = self.insts[lhs.index()].ty.short();
                    write!(line, "{op}.{ot} {lhs}, {rhs}")?
                }
                Inst::Select {
                    cond,
                    on_true,
                    on_false,
                } => write!(line, "select.{t} {cond}, {on_true}, {on_false}")?,
                Inst::Cast { arg } => {
                    let from = self.insts[arg.index()].ty.short();
                    write!(line, "cast.{from}.{t} {arg}")?
                }
                Inst::Bitcast { arg } => {
                    let from = self.insts[arg.index()].ty.short();
                    write!(line, "bitcast.{from}.{t} {arg}")?
                }
                Inst::Fallback { cond, value, call } => {
                    write!(line, "fallback.{t} {cond}, {value}, {call}")?
                }
                Inst::Fma { a, b, c } => write!(line, "fma.{t} {a}, {b}, {c}")?,
                Inst::Lookup { table, index } => {
                    write!(line, "lookup.{t} {}, {index}", table.name())?
                }
            }
            writeln!(f, "  v{i} = {line}")?;
        }
        for o in &self.outputs {
            match *o {
                Output::Store { value } => writeln!(f, "  store {value}")?,
                Output::Reduce { op, value } => writeln!(f, "  reduce.{op} {value}")?,
            }
        }
        write!(f, "}}")
    }
}

/// Builds a kernel, numbering values and merging identical instructions (local CSE).
#[derive(Default)]
pub struct KernelBuilder {
    inputs: Vec<DType>,
    insts: Vec<InstData>,
    memo: HashMap<InstData, Value>,
}

impl KernelBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    /// Declare an array input; returns its index for [`Inst::Load`].
    pub fn input(&mut self, ty: DType) -> u32 {
        self.inputs.push(ty);
        (self.inputs.len() - 1) as u32
    }
    pub fn push(&mut self, inst: Inst, ty: DType) -> Value {
        let d = InstData { inst, ty };
        if let Some(v) = self.memo.get(&d) {
            return *v;
        }
        let v = Value(self.insts.len() as u32);
        self.insts.push(d);
        self.memo.insert(d, v);
        v
    }
    pub fn ty(&self, v: Value) -> DType {
        self.insts[v.index()].ty
    }
    pub fn finish(self, output: Output) -> Kernel {
        self.finish_many(vec![output])
    }
    /// A kernel with several outputs (all stores or all reductions).
    pub fn finish_many(self, outputs: Vec<Output>) -> Kernel {
        Kernel {
            inputs: self.inputs,
            insts: self.insts,
            outputs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poly() -> Kernel {
        let mut b = KernelBuilder::new();
        let x = b.input(DType::F64);
        let v0 = b.push(Inst::Load { input: x }, DType::F64);
        let c5 = b.push(Inst::Const(Const::F64(5.0)), DType::F64);
        let m = b.push(
            Inst::Binary {
                op: BinaryOp::Mul,
                lhs: c5,
                rhs: v0,
            },
            DType::F64,
        );
        b.finish(Output::Store { value: m })
    }

    #[test]
    fn prints_and_verifies() {
        let k = poly();
        k.verify().unwrap();
        assert_eq!(
            k.to_string(),
            "kernel(in0: f64) -> store f64 {\n  v0 = load.f64 in0\n  v1 = const.f64 5.0\n  v2 = mul.f64 v1, v0\n  store v2\n}"
        );
    }

    #[test]
    fn verifier_rejects_mixed_operands() {
        let mut k = poly();
        k.insts[1] = InstData {
            inst: Inst::Const(Const::F32(5.0)),
            ty: DType::F32,
        };
        assert!(matches!(k.verify(), Err(Error::InvalidKernel { .. })));
        let mut k = poly();
        k.insts[2].inst = Inst::Binary {
            op: BinaryOp::Mul,
            lhs: Value(1),
            rhs: Value(2),
        };
        assert!(k.verify().is_err());
    }

    #[test]
    fn lookup_needs_an_int64_index_and_the_table_type() {
        for (index_ty, ty, ok) in [
            (DType::I64, DType::F64, true),
            (DType::I32, DType::F64, true),
            (DType::F64, DType::F64, false),
            (DType::I64, DType::F32, false),
            (DType::I64, DType::I64, false),
        ] {
            let mut b = KernelBuilder::new();
            let i = b.input(index_ty);
            let v = b.push(Inst::Load { input: i }, index_ty);
            let t = b.push(
                Inst::Lookup {
                    table: Table::Exp2Lo,
                    index: v,
                },
                ty,
            );
            let k = b.finish(Output::Store { value: t });
            assert_eq!(k.verify().is_ok(), ok, "{k}");
            if ok {
                assert!(k.to_string().contains("lookup.f64 exp2_128_lo, v0"), "{k}");
            }
        }
        // Every index is masked into the table.
        assert_eq!(Table::Exp2Hi.get(128 + 5), Table::Exp2Hi.get(5));
        assert_eq!(Table::Exp2Hi.get(-1), Table::Exp2Hi.get(127));
        assert_eq!(Table::Exp2Hi.get(0), Const::F64(1.0));
        // Integer tables give their type's constants.
        assert_eq!(Table::TwoOverPi32.get(2), Const::I64(0xa2f9836e));
        assert_eq!(Table::TwoOverPi16.get(17), Const::I32(0xa2f9));
        for t in Table::ALL {
            assert!(t.entries().len().is_power_of_two(), "{}", t.name());
            assert_eq!(t.get(0).dtype(), t.dtype());
        }
    }

    #[test]
    fn builder_merges_identical_instructions() {
        let mut b = KernelBuilder::new();
        let x = b.input(DType::F32);
        let a = b.push(Inst::Load { input: x }, DType::F32);
        let a2 = b.push(Inst::Load { input: x }, DType::F32);
        assert_eq!(a, a2);
        let z = b.push(Inst::Const(Const::F64(0.0)), DType::F64);
        let nz = b.push(Inst::Const(Const::F64(-0.0)), DType::F64);
        assert_ne!(z, nz, "0.0 and -0.0 are different constants");
    }

    fn fallback_kernel(call: Call, cond_ty: DType) -> Kernel {
        let mut b = KernelBuilder::new();
        let i = b.input(DType::F64);
        let x = b.push(Inst::Load { input: i }, DType::F64);
        let c = b.push(Inst::Const(Const::F64(1e6)), DType::F64);
        let cond = if cond_ty == DType::Bool {
            b.push(
                Inst::Binary {
                    op: BinaryOp::Gt,
                    lhs: x,
                    rhs: c,
                },
                DType::Bool,
            )
        } else {
            c
        };
        let v = b.push(
            Inst::Fallback {
                cond,
                value: x,
                call: call.map(|_| x),
            },
            DType::F64,
        );
        b.finish(Output::Store { value: v })
    }

    #[test]
    fn fallback_prints_and_verifies() {
        let k = fallback_kernel(Call::Unary(UnaryOp::Sin, Value(0)), DType::Bool);
        k.verify().unwrap();
        assert!(
            k.to_string().contains("v3 = fallback.f64 v2, v0, sin(v0)"),
            "{k}"
        );
        let k = fallback_kernel(Call::Binary(BinaryOp::Pow, Value(0), Value(0)), DType::Bool);
        k.verify().unwrap();
        assert!(k.to_string().contains("pow(v0, v0)"), "{k}");
    }

    #[test]
    fn verifier_rejects_ill_typed_fallbacks() {
        // The condition must be bool.
        let k = fallback_kernel(Call::Unary(UnaryOp::Sin, Value(0)), DType::F64);
        assert!(matches!(k.verify(), Err(Error::InvalidKernel { .. })));
        // The call must produce the instruction's type.
        let mut k = fallback_kernel(Call::Unary(UnaryOp::Sin, Value(0)), DType::Bool);
        k.insts[3].ty = DType::F32;
        assert!(k.verify().is_err());
        // ... from operands of the type it computes in (a comparison is no float function).
        let k = fallback_kernel(Call::Binary(BinaryOp::Lt, Value(0), Value(0)), DType::Bool);
        assert!(k.verify().is_err());
        // Operands are defined before use.
        let mut k = fallback_kernel(Call::Unary(UnaryOp::Sin, Value(0)), DType::Bool);
        k.insts[3].inst = Inst::Fallback {
            cond: Value(2),
            value: Value(0),
            call: Call::Unary(UnaryOp::Sin, Value(3)),
        };
        assert!(k.verify().is_err());
    }

    #[test]
    fn fma_prints_and_verifies() {
        let mut b = KernelBuilder::new();
        let i = b.input(DType::F64);
        let x = b.push(Inst::Load { input: i }, DType::F64);
        let c = b.push(Inst::Const(Const::F64(2.0)), DType::F64);
        let f = b.push(Inst::Fma { a: x, b: c, c: x }, DType::F64);
        let k = b.finish(Output::Store { value: f });
        k.verify().unwrap();
        assert!(k.to_string().contains("v2 = fma.f64 v0, v1, v0"), "{k}");
        // Operands of another type, a non-float result, or a use before definition.
        let mut bad = k.clone();
        bad.insts[1] = InstData {
            inst: Inst::Const(Const::F32(2.0)),
            ty: DType::F32,
        };
        assert!(matches!(bad.verify(), Err(Error::InvalidKernel { .. })));
        let mut bad = k.clone();
        bad.insts[2].ty = DType::I64;
        assert!(bad.verify().is_err());
        let mut bad = k;
        bad.insts[2].inst = Inst::Fma {
            a: Value(0),
            b: Value(1),
            c: Value(2),
        };
        assert!(bad.verify().is_err());
    }
}
