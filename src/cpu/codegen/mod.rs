//! Kernel IR -> Cranelift IR -> machine code.
//!
//! Every kernel becomes one function that processes one *inner run* of the iteration space:
//!
//! ```text
//! extern "C" fn(ins: *const *const u8, in_strides_bytes: *const isize, out: *mut u8,
//!               n: usize, start: i64)
//! ```
//!
//! `ins[j]` points at input `j`'s first element of the run and `in_strides_bytes[j]` is its step
//! (0 for a broadcast input, negative for a reversed one).
//! - A store kernel: `out` is an array of one pointer per output, each to `n` contiguous
//!   elements the function writes.
//! - A reduction kernel: `out` is an array of one accumulator [`SLOT`] per output (the value in
//!   the accumulator dtype of [`acc_dtype`]: float sums in `f64`, float32 included; then an `i64`
//!   position for `argmin`/`argmax`, -1 while empty). The function combines the run's `n`
//!   values, in order, into the accumulators it finds there; element `i` of the run has position
//!   `start + i` in the reduced sub-space (runs go along the innermost reduced axis).
//!
//! Reduction kernels get a second function of the same type, the *vertical* one, for reductions
//! along an outer axis: there the run goes along a kept axis, element `i` combines into its own
//! accumulators, and every element has position `start`. A kernel with a SIMD loop gets a
//! vertical SIMD loop too, across neighbouring kept positions: then `out` holds one pointer per
//! output to `n` accumulators side by side in the accumulator dtype (bool: bytes). Otherwise
//! the accumulators are the slots `out[i * outputs + o]` and the function is a scalar loop.
//!
//! The function has up to two loops:
//! - a SIMD loop (128-bit vectors, unrolled) taken when every input's stride equals its element
//!   size or is 0 (a broadcast input: its first element is splatted once per call into vectors
//!   on the stack, which the loop reads in its place). Its lane count comes from the kernel's
//!   widest element ([`simd_width`]): a value of a narrower dtype (float32 next to float64, a
//!   bool array's bytes) sits in the low lanes of its own 128-bit vector, loaded and stored as
//!   8, 4 or 2 bytes, and casts between widths widen or narrow (`fvpromote_low`, `fvdemote`,
//!   `swiden_low`/`uwiden_low`, a byte shuffle). Bool values are lane masks that carry their
//!   lane width (a comparison's is its operands'), resized by one byte shuffle where a consumer
//!   needs another. It exists unless the kernel has `argmin`/`argmax` or reduces a number
//!   narrower than its widest element. Reductions keep unrolled vector accumulators started at
//!   the operator's identity, combined pairwise, lane by lane, then into the incoming
//!   accumulator;
//! - a scalar loop for any strides, which also finishes the SIMD loop's tail.
//!
//! Operations without a vector instruction are computed per lane with the scalar code.
//! Transcendentals and the float `//`, `%`, `fmod`, `**`, ... call `extern "C"` wrappers around
//! [`crate::semantics`], so results equal the reference evaluator's bit for bit.
//! [`Inst::Fallback`] (a rarely needed scalar call) tests its condition once per vector
//! (`vany_true`) and branches to a cold block that calls the wrapper per lane and keeps the
//! results in the lanes whose condition holds; in the scalar loop, a branch on the condition.
//!
//! [`Inst::Fma`] becomes Cranelift's `fma` (one `vfmadd` on x86-64); a kernel holding one is
//! refused on a target without fused multiply-add ([`has_fma`]).
//!
//! With the environment variable `FUSEBOX_DISASM` set, every compiled function's kernel IR and
//! machine code are printed on stderr (for counting what a kernel costs).
//!
//! Invariant: only kernels that passed [`Kernel::verify`] reach this module.
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::{Call, Const, Inst, Kernel, Output};
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::semantics;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, ConstantData, Endianness, FuncRef, GlobalValue, InstBuilder,
    MemFlagsData, Signature, StackSlotData, StackSlotKind, Type, UserFuncName, Value,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, DataDescription, DataId, FuncId, Linkage, Module};
use std::collections::HashMap;

mod emit;

/// Bytes in one SIMD register (Cranelift's x86-64 backend emits 128-bit vectors only).
const VEC_BYTES: usize = 16;
/// Vectors per SIMD-loop iteration for store kernels.
const STORE_UNROLL: usize = 2;
/// Vector constants a SIMD loop keeps in registers; a kernel with more reads each from the
/// constant pool at its use (see `Gen::operand`).
const REG_CONSTS: usize = 6;
/// Vectors per SIMD-loop iteration for reductions: 4 x f64x2 = 8 independent partial sums, like
/// NumPy's pairwise summation blocks.
const REDUCE_UNROLL: usize = 4;
/// Bytes of one reduction accumulator slot: the value (in the low bytes of the first 8, in the
/// accumulator dtype of `acc_dtype`), then an `i64` position (`argmin`/`argmax`; -1: empty).
pub(crate) const SLOT: usize = 16;

/// A compiled kernel function and the module owning its code.
pub(crate) struct Compiled {
    /// `Some` until dropped; freeing it releases the code.
    module: Option<JITModule>,
    pub(crate) code: *const u8,
    /// Reductions: the vertical function (see the module docs).
    pub(crate) code_v: Option<*const u8>,
    /// Whether the function has a SIMD loop.
    pub(crate) simd: bool,
}

impl Drop for Compiled {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: `code` points into this module's memory and is only called through a
            // `&CpuKernel`, which cannot outlive the kernel that owns this `Compiled`.
            unsafe { m.free_memory() };
        }
    }
}

/// The byte width the SIMD loop works in, if the kernel can have one (see the module docs):
/// the widest element of any non-bool value, input or output (1 for a kernel of bools only).
/// Narrower values ride in the low lanes of their own 128-bit vectors, so every value has the
/// widest type's lane count. A reduction's operand must fill whole vectors (a bool mask does,
/// a narrower number does not); `argmin`/`argmax` have no vector code.
pub(crate) fn simd_width(k: &Kernel) -> Option<usize> {
    let width = k
        .inputs
        .iter()
        .chain(k.insts.iter().map(|d| &d.ty))
        .filter(|t| !t.is_bool())
        .map(|t| t.size())
        .max()
        .unwrap_or(1);
    let fits = |o: &Output| match *o {
        Output::Store { .. } => true,
        Output::Reduce { op, value } => {
            let dt = k.ty(value);
            !op.is_arg() && (dt.is_bool() || dt.size() == width)
        }
    };
    // A fallback's value is a number (the math expansions' rare-lane calls).
    let bool_fallback = k
        .insts
        .iter()
        .any(|d| matches!(d.inst, Inst::Fallback { .. }) && d.ty.is_bool());
    (k.outputs.iter().all(fits) && !bool_fallback).then_some(width)
}

/// The function types of the `extern "C"` wrappers.
type UnF64 = extern "C" fn(f64) -> f64;
type UnF32 = extern "C" fn(f32) -> f32;
type BinF64 = extern "C" fn(f64, f64) -> f64;
type BinF32 = extern "C" fn(f32, f32) -> f32;
type BinI64 = extern "C" fn(i64, i64) -> i64;
type BinI32 = extern "C" fn(i32, i32) -> i32;
type BinU64 = extern "C" fn(u64, u64) -> u64;

extern "C" fn un_f64<const I: usize>(x: f64) -> f64 {
    semantics::unary_f64(UnaryOp::ALL[I], x)
}
extern "C" fn un_f32<const I: usize>(x: f32) -> f32 {
    semantics::unary_f32(UnaryOp::ALL[I], x)
}
extern "C" fn bin_f64<const I: usize>(a: f64, b: f64) -> f64 {
    semantics::binary_f64(BinaryOp::ALL[I], a, b)
}
extern "C" fn bin_f32<const I: usize>(a: f32, b: f32) -> f32 {
    semantics::binary_f32(BinaryOp::ALL[I], a, b)
}
extern "C" fn bin_i64<const I: usize>(a: i64, b: i64) -> i64 {
    semantics::binary_i64(BinaryOp::ALL[I], a, b)
}
extern "C" fn bin_i32<const I: usize>(a: i32, b: i32) -> i32 {
    semantics::binary_i32(BinaryOp::ALL[I], a, b)
}
extern "C" fn bin_u64<const I: usize>(a: u64, b: u64) -> u64 {
    semantics::binary_u64(BinaryOp::ALL[I], a, b)
}

/// One monomorphic wrapper per operator index (`$f::<0>`, `$f::<1>`, ...).
macro_rules! fn_table {
    ($f:ident as $ty:ty; $($i:literal)*) => { [$($f::<$i> as $ty),*] };
}
static UN_F64: [UnF64; UnaryOp::ALL.len()] = fn_table!(un_f64 as UnF64;
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26);
static UN_F32: [UnF32; UnaryOp::ALL.len()] = fn_table!(un_f32 as UnF32;
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26);
static BIN_F64: [BinF64; BinaryOp::ALL.len()] = fn_table!(bin_f64 as BinF64;
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
static BIN_F32: [BinF32; BinaryOp::ALL.len()] = fn_table!(bin_f32 as BinF32;
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
static BIN_I64: [BinI64; BinaryOp::ALL.len()] = fn_table!(bin_i64 as BinI64;
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
static BIN_I32: [BinI32; BinaryOp::ALL.len()] = fn_table!(bin_i32 as BinI32;
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
static BIN_U64: [BinU64; BinaryOp::ALL.len()] = fn_table!(bin_u64 as BinU64;
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);

/// A Rust function the generated code calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Helper {
    Un(UnaryOp, DType),
    Bin(BinaryOp, DType),
}

impl Helper {
    /// The helper an operation needs in the scalar code, if any (`dt`: operand dtype).
    fn for_unary(op: UnaryOp, dt: DType) -> Option<Helper> {
        (dt.is_float() && op.is_transcendental() && op != UnaryOp::Sqrt)
            .then_some(Helper::Un(op, dt))
    }
    fn for_binary(op: BinaryOp, dt: DType) -> Option<Helper> {
        use BinaryOp::*;
        let call = match dt {
            DType::F32 | DType::F64 => {
                matches!(
                    op,
                    FloorDiv | Rem | Pow | Arctan2 | Hypot | Fmod | Nextafter
                )
            }
            // Narrower integers widen to int64 for `**` (see `Gen::int_pow`).
            DType::I32 | DType::I64 | DType::U64 => op == Pow,
            d if d.is_int() => return (op == Pow).then_some(Helper::Bin(op, DType::I64)),
            _ => false,
        };
        call.then_some(Helper::Bin(op, dt))
    }
    fn name(self) -> String {
        match self {
            Helper::Un(op, dt) => format!("fusebox_{}_{}", op.name(), dt.short()),
            Helper::Bin(op, dt) => format!("fusebox_{}_{}", op.name(), dt.short()),
        }
    }
    fn ptr(self) -> *const u8 {
        let ui = |op: UnaryOp| UnaryOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        let bi = |op: BinaryOp| BinaryOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        match self {
            Helper::Un(op, DType::F32) => UN_F32[ui(op)] as *const u8,
            Helper::Un(op, _) => UN_F64[ui(op)] as *const u8,
            Helper::Bin(op, DType::F32) => BIN_F32[bi(op)] as *const u8,
            Helper::Bin(op, DType::F64) => BIN_F64[bi(op)] as *const u8,
            Helper::Bin(op, DType::I32) => BIN_I32[bi(op)] as *const u8,
            Helper::Bin(op, DType::U64) => BIN_U64[bi(op)] as *const u8,
            Helper::Bin(op, _) => BIN_I64[bi(op)] as *const u8,
        }
    }
    fn arity(self) -> usize {
        match self {
            Helper::Un(..) => 1,
            Helper::Bin(..) => 2,
        }
    }
    fn dtype(self) -> DType {
        match self {
            Helper::Un(_, d) | Helper::Bin(_, d) => d,
        }
    }
}

fn helpers_needed(k: &Kernel) -> Vec<Helper> {
    let mut out = Vec::new();
    for d in &k.insts {
        let h = match d.inst {
            Inst::Unary { op, arg } => Helper::for_unary(op, k.ty(arg)),
            Inst::Binary { op, lhs, .. } => Helper::for_binary(op, k.ty(lhs)),
            Inst::Fallback { call, .. } => match call {
                Call::Unary(op, a) => Helper::for_unary(op, k.ty(a)),
                Call::Binary(op, a, _) => Helper::for_binary(op, k.ty(a)),
            },
            _ => None,
        };
        if let Some(h) = h {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

fn compile_err(e: impl std::fmt::Display) -> Error {
    Error::Compile {
        message: e.to_string(),
    }
}

/// Whether Cranelift lowers `fma` on `isa` to one fused instruction (x86-64: FMA3 with AVX,
/// as its `use_fma` rule asks); elsewhere it would call libm's `fma` per lane.
pub(crate) fn has_fma(isa: &OwnedTargetIsa) -> bool {
    let flags = isa.isa_flags();
    let on = |name: &str| {
        flags
            .iter()
            .any(|f| f.name == name && f.as_bool().unwrap_or(false))
    };
    match isa.name() {
        "x64" => on("has_fma") && on("has_avx"),
        // AArch64 always has fused multiply-add (fmadd, fmla).
        "aarch64" => true,
        _ => false,
    }
}

/// Compile `k`; with `simd: Some(width)` the function gets a SIMD loop in that byte width.
pub(crate) fn compile(isa: &OwnedTargetIsa, k: &Kernel, simd: Option<usize>) -> Result<Compiled> {
    if !has_fma(isa) && k.insts.iter().any(|d| matches!(d.inst, Inst::Fma { .. })) {
        // Cranelift would call libm's `fma` per lane: correct, but never what a math
        // expansion that chose FMA for speed wants.
        return Err(Error::Compile {
            message: "fma needs a target with FMA instructions".into(),
        });
    }
    let helpers = helpers_needed(k);
    let mut jb = JITBuilder::with_isa(isa.clone(), default_libcall_names());
    for h in &helpers {
        jb.symbol(h.name(), h.ptr());
    }
    let mut module = JITModule::new(jb);
    let compiled = build(&mut module, k, simd, &helpers);
    match compiled {
        Ok((code, code_v)) => Ok(Compiled {
            module: Some(module),
            code,
            code_v,
            simd: simd.is_some(),
        }),
        Err(e) => {
            // SAFETY: no function of this module was handed out.
            unsafe { module.free_memory() };
            Err(e)
        }
    }
}

fn build(
    module: &mut JITModule,
    k: &Kernel,
    simd: Option<usize>,
    helpers: &[Helper],
) -> Result<(*const u8, Option<*const u8>)> {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for _ in 0..3 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));

    let mut helper_ids = Vec::new();
    for h in helpers {
        let t = scalar_type(h.dtype());
        let mut s = module.make_signature();
        for _ in 0..h.arity() {
            s.params.push(AbiParam::new(t));
        }
        s.returns.push(AbiParam::new(t));
        let id = module
            .declare_function(&h.name(), Linkage::Import, &s)
            .map_err(compile_err)?;
        helper_ids.push((*h, id));
    }
    let pool_id = module
        .declare_data("constants", Linkage::Local, false, false)
        .map_err(compile_err)?;
    let mut pool = Vec::new();
    let fid = define(
        module,
        &sig,
        "kernel",
        k,
        &helper_ids,
        (pool_id, &mut pool),
        |g| g.function(simd),
    )?;
    let vid = if k.is_reduction() {
        Some(define(
            module,
            &sig,
            "kernel_v",
            k,
            &helper_ids,
            (pool_id, &mut pool),
            |g| g.vertical(simd),
        )?)
    } else {
        None
    };
    pool.resize(pool.len().max(VEC_BYTES), 0);
    let mut data = DataDescription::new();
    data.define(pool.into_boxed_slice());
    data.set_align(VEC_BYTES as u64);
    module.define_data(pool_id, &data).map_err(compile_err)?;
    module.finalize_definitions().map_err(compile_err)?;
    Ok((
        module.get_finalized_function(fid),
        vid.map(|v| module.get_finalized_function(v)),
    ))
}

/// Declare and define one function of the kernel's module, its body emitted by `emit`.
fn define(
    module: &mut JITModule,
    sig: &Signature,
    name: &str,
    k: &Kernel,
    helper_ids: &[(Helper, FuncId)],
    (pool_id, pool): (DataId, &mut Vec<u8>),
    emit: impl FnOnce(&mut Gen<'_, '_>) -> Result<()>,
) -> Result<FuncId> {
    let fid = module
        .declare_function(name, Linkage::Local, sig)
        .map_err(compile_err)?;
    let mut ctx = module.make_context();
    let disasm = std::env::var_os("FUSEBOX_DISASM").is_some();
    ctx.set_disasm(disasm);
    ctx.func.signature = sig.clone();
    ctx.func.name = UserFuncName::user(0, fid.as_u32());
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let mut refs = HashMap::new();
    for (h, id) in helper_ids {
        refs.insert(*h, module.declare_func_in_func(*id, b.func));
    }
    let pool_gv = module.declare_data_in_func(pool_id, b.func);
    let mut g = Gen {
        b: &mut b,
        k,
        helpers: &refs,
        pool,
        pool_gv,
        pool_base: None,
        mask_w: Vec::new(),
    };
    emit(&mut g)?;
    b.seal_all_blocks();
    b.finalize(module.target_config());

    // Cranelift reports unsupported lowerings as errors; guard against panics all the same, so
    // that the caller can fall back to the scalar-only function.
    let defined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        module
            .define_function(fid, &mut ctx)
            .map_err(|e| Error::Compile {
                message: format!("{e:?}"),
            })
    }))
    .map_err(|_| Error::Compile {
        message: "Cranelift panicked while compiling the kernel".into(),
    })?;
    defined?;
    if let Some(code) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
        eprintln!("fusebox: {name} of\n{k}\nmachine code:\n{code}");
    }
    Ok(fid)
}

/// The Cranelift type of a scalar of dtype `dt` (bool: one byte, 0 or 1).
/// The amount of an integer shift by a constant in `0..bits`, if `op` is one.
fn const_shift(
    k: &Kernel,
    op: BinaryOp,
    lhs: crate::kir::Value,
    rhs: crate::kir::Value,
) -> Option<i64> {
    if !matches!(op, BinaryOp::Shl | BinaryOp::Shr) {
        return None;
    }
    let bits = (k.ty(lhs).size() * 8) as i64;
    match k.insts[rhs.index()].inst {
        Inst::Const(Const::I32(c)) if (0..bits).contains(&(c as i64)) => Some(c as i64),
        Inst::Const(Const::I64(c)) if (0..bits).contains(&c) => Some(c),
        _ => None,
    }
}

fn scalar_type(dt: DType) -> Type {
    match dt {
        DType::Bool | DType::I8 | DType::U8 => types::I8,
        // float16 is held as its bits: the kernel IR only loads, stores and converts it.
        DType::I16 | DType::U16 | DType::F16 => types::I16,
        DType::I32 | DType::U32 => types::I32,
        DType::I64 | DType::U64 => types::I64,
        DType::F32 => types::F32,
        DType::F64 => types::F64,
    }
}

/// How values are held: one element per SSA value, or `16 / width` elements per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Scalar,
    /// `16 / width` elements per value, `width` the kernel's widest element: a value of that
    /// width fills a 128-bit vector, a narrower one sits in the low lanes of its own 128-bit
    /// vector (the lanes above hold anything and are never stored, reduced or tested). Bool
    /// values are lane masks (all ones / all zeros) of a width each value carries (see
    /// `emit::Gen::body`); `ty(Bool)` is the mask of `width`.
    Vector {
        width: usize,
    },
}

impl Mode {
    /// Elements per value.
    fn lanes(self) -> usize {
        match self {
            Mode::Scalar => 1,
            Mode::Vector { width } => VEC_BYTES / width,
        }
    }
    /// The kernel's widest element in bytes (1 in scalar mode, where it does not matter).
    fn width(self) -> usize {
        match self {
            Mode::Scalar => 1,
            Mode::Vector { width } => width,
        }
    }
    fn ty(self, dt: DType) -> Type {
        match self {
            Mode::Scalar => scalar_type(dt),
            Mode::Vector { width } => match dt {
                DType::Bool => mask_type(width),
                d => scalar_type(d)
                    .by((VEC_BYTES / d.size()) as u32)
                    .expect("a 128-bit vector type"),
            },
        }
    }
}

/// The 128-bit lane-mask type of lanes `w` bytes wide (1, 2, 4 or 8).
fn mask_type(w: usize) -> Type {
    Type::int_with_byte_size(w as u16)
        .and_then(|l| l.by((VEC_BYTES / w) as u32))
        .expect("a 128-bit vector type")
}

fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}
fn lanes_flags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

struct Gen<'a, 'f> {
    b: &'a mut FunctionBuilder<'f>,
    k: &'a Kernel,
    helpers: &'a HashMap<Helper, FuncRef>,
    /// The module's read-only constant pool (see [`Gen::operand`]): its bytes so far, its
    /// symbol, and its address inside the SIMD loop.
    pool: &'a mut Vec<u8>,
    pool_gv: GlobalValue,
    pool_base: Option<Value>,
    /// The lane width of each value of the body emitted last (see [`Gen::body`]).
    mask_w: Vec<usize>,
}

/// A reduction output as the generated code sees it.
#[derive(Debug, Clone, Copy)]
struct Red {
    op: ReduceOp,
    value: crate::kir::Value,
    /// The operand's dtype.
    dt: DType,
    /// The accumulator's dtype (see [`acc_dtype`]).
    acc: DType,
}

/// The dtype a reduction accumulates in: float sums in float64 (float32 included), everything
/// else in the operand's dtype.
pub(crate) fn acc_dtype(op: ReduceOp, dt: DType) -> DType {
    match op {
        ReduceOp::Sum if dt.is_float() => DType::F64,
        _ => dt,
    }
}

/// The identity of a reduction's combining operator in the accumulator dtype `acc` (`min`:
/// +inf, the largest integer, true). `argmin`/`argmax` accumulators start empty (position -1)
/// instead; their value is this identity but is never compared.
pub(crate) fn acc_identity(op: ReduceOp, acc: DType) -> Const {
    use ReduceOp::*;
    match (op, acc) {
        (Sum, _) => semantics::cast(Const::I64(0), acc),
        (Prod, _) => semantics::cast(Const::I64(1), acc),
        (Any, _) => Const::Bool(false),
        (All, _) => Const::Bool(true),
        (Min | ArgMin, DType::Bool) => Const::Bool(true),
        (Min | ArgMin, t) if t.is_int() => {
            Const::wrap_int(t.int_range().map_or(0, |(_, hi)| hi), t)
        }
        (Min | ArgMin, DType::F32) => Const::F32(f32::INFINITY),
        (Min | ArgMin, _) => Const::F64(f64::INFINITY),
        (Max | ArgMax, DType::Bool) => Const::Bool(false),
        (Max | ArgMax, t) if t.is_int() => {
            Const::wrap_int(t.int_range().map_or(0, |(lo, _)| lo), t)
        }
        (Max | ArgMax, DType::F32) => Const::F32(f32::NEG_INFINITY),
        (Max | ArgMax, _) => Const::F64(f64::NEG_INFINITY),
    }
}

/// The kernel's reduction outputs, in order (empty for a kernel of stores).
fn reductions(k: &Kernel) -> Vec<Red> {
    k.outputs
        .iter()
        .filter_map(|o| match *o {
            Output::Reduce { op, value } => Some(Red {
                op,
                value,
                dt: k.ty(value),
                acc: acc_dtype(op, k.ty(value)),
            }),
            Output::Store { .. } => None,
        })
        .collect()
}

fn args(vals: &[Value]) -> Vec<BlockArg> {
    vals.iter().map(|v| BlockArg::Value(*v)).collect()
}

/// The function's parameters and each input's base address and byte step.
struct Params {
    out: Value,
    n: Value,
    start: Value,
    bases: Vec<Value>,
    steps: Vec<Value>,
}

impl Gen<'_, '_> {
    /// Open the entry block and load each input's base address and step.
    fn entry(&mut self) -> Params {
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let p = self.b.block_params(entry).to_vec();
        let (ins, strides) = (p[0], p[1]);
        let mut bases = Vec::new();
        let mut steps = Vec::new();
        for j in 0..self.k.inputs.len() {
            let off = (j * 8) as i32;
            bases.push(self.b.ins().load(types::I64, mem(), ins, off));
            steps.push(self.b.ins().load(types::I64, mem(), strides, off));
        }
        Params {
            out: p[2],
            n: p[3],
            start: p[4],
            bases,
            steps,
        }
    }

    /// Emit the run function (see the module docs for its loops).
    fn function(&mut self, simd: Option<usize>) -> Result<()> {
        let k = self.k;
        let p = self.entry();
        let reds = reductions(k);
        // Stores: the output pointers; reductions: the accumulators' starting values.
        let mut outs = Vec::new();
        let mut acc0 = Vec::new();
        let mut acc_tys = Vec::new();
        if reds.is_empty() {
            for o in 0..k.outputs.len() {
                let a = self.b.ins().load(types::I64, mem(), p.out, (o * 8) as i32);
                outs.push(a);
            }
        }
        for (o, r) in reds.iter().enumerate() {
            let t = scalar_type(r.acc);
            acc0.push(self.b.ins().load(t, mem(), p.out, (o * SLOT) as i32));
            acc_tys.push(t);
            if r.op.is_arg() {
                let pos = self
                    .b
                    .ins()
                    .load(types::I64, mem(), p.out, (o * SLOT + 8) as i32);
                acc0.push(pos);
                acc_tys.push(types::I64);
            }
        }

        let scalar_head = self.b.create_block();
        let scalar_body = self.b.create_block();
        let exit = self.b.create_block();
        let i_head = self.b.append_block_param(scalar_head, types::I64);
        let i_body = self.b.append_block_param(scalar_body, types::I64);
        let mut acc_head = Vec::new();
        let mut acc_body = Vec::new();
        let mut acc_exit = Vec::new();
        for t in &acc_tys {
            acc_head.push(self.b.append_block_param(scalar_head, *t));
            acc_body.push(self.b.append_block_param(scalar_body, *t));
            acc_exit.push(self.b.append_block_param(exit, *t));
        }
        let zero_i = self.b.ins().iconst(types::I64, 0);

        // Start: SIMD loop when it exists and the run is contiguous, else the scalar loop.
        let mut start: Vec<Value> = vec![zero_i];
        start.extend(&acc0);
        match simd {
            Some(width) => self.simd_loop(width, &p, &outs, &reds, &acc0, scalar_head)?,
            None => {
                self.b.ins().jump(scalar_head, &args(&start));
            }
        }

        // Scalar loop: head tests i < n.
        self.b.switch_to_block(scalar_head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i_head, p.n);
        let mut body_args = vec![i_head];
        body_args.extend(&acc_head);
        self.b
            .ins()
            .brif(more, scalar_body, &args(&body_args), exit, &args(&acc_head));

        self.b.switch_to_block(scalar_body);
        let addrs = self.addrs_at(&p.bases, &p.steps, i_body);
        let vals = self.body(Mode::Scalar, &addrs, 0)?;
        let next = self.b.ins().iadd_imm_s(i_body, 1);
        let mut back = vec![next];
        if reds.is_empty() {
            for (o, out) in k.outputs.iter().enumerate() {
                let size = k.dtype_of(*out).size() as i64;
                let off = self.b.ins().imul_imm_s(i_body, size);
                let addr = self.b.ins().iadd(outs[o], off);
                self.b
                    .ins()
                    .store(mem(), vals[out.value().index()], addr, 0);
            }
        } else {
            let pos = self.b.ins().iadd(p.start, i_body);
            let mut j = 0;
            for r in &reds {
                let v = vals[r.value.index()];
                if r.op.is_arg() {
                    let (a, q) = self.arg_step(r, acc_body[j], acc_body[j + 1], v, pos)?;
                    back.push(a);
                    back.push(q);
                    j += 2;
                } else {
                    back.push(self.combine_s(r, acc_body[j], v)?);
                    j += 1;
                }
            }
        }
        self.b.ins().jump(scalar_head, &args(&back));

        self.b.switch_to_block(exit);
        let mut j = 0;
        for (o, r) in reds.iter().enumerate() {
            self.b
                .ins()
                .store(mem(), acc_exit[j], p.out, (o * SLOT) as i32);
            j += 1;
            if r.op.is_arg() {
                self.b
                    .ins()
                    .store(mem(), acc_exit[j], p.out, (o * SLOT + 8) as i32);
                j += 1;
            }
        }
        self.b.ins().return_(&[]);
        Ok(())
    }

    /// Emit the vertical reduction function: element `i` of the run combines into its own
    /// accumulators, all at position `start`. With a SIMD width they are dense (see
    /// [`Gen::vertical_simd`]); without, the slots at `out + (i * outputs + o) * SLOT`.
    fn vertical(&mut self, simd: Option<usize>) -> Result<()> {
        if let Some(width) = simd {
            return self.vertical_simd(width);
        }
        let k = self.k;
        let p = self.entry();
        let reds = reductions(k);
        let row = (reds.len() * SLOT) as i64;
        let head = self.b.create_block();
        let body = self.b.create_block();
        let exit = self.b.create_block();
        let i_head = self.b.append_block_param(head, types::I64);
        let i_body = self.b.append_block_param(body, types::I64);
        let zero_i = self.b.ins().iconst(types::I64, 0);
        self.b.ins().jump(head, &args(&[zero_i]));

        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i_head, p.n);
        self.b.ins().brif(more, body, &args(&[i_head]), exit, &[]);

        self.b.switch_to_block(body);
        let addrs = self.addrs_at(&p.bases, &p.steps, i_body);
        let vals = self.body(Mode::Scalar, &addrs, 0)?;
        let off = self.b.ins().imul_imm_s(i_body, row);
        let slots = self.b.ins().iadd(p.out, off);
        for (o, r) in reds.iter().enumerate() {
            let v = vals[r.value.index()];
            let at = (o * SLOT) as i32;
            let acc = self.b.ins().load(scalar_type(r.acc), mem(), slots, at);
            if r.op.is_arg() {
                let pos = self.b.ins().load(types::I64, mem(), slots, at + 8);
                let (a, q) = self.arg_step(r, acc, pos, v, p.start)?;
                self.b.ins().store(mem(), a, slots, at);
                self.b.ins().store(mem(), q, slots, at + 8);
            } else {
                let a = self.combine_s(r, acc, v)?;
                self.b.ins().store(mem(), a, slots, at);
            }
        }
        let next = self.b.ins().iadd_imm_s(i_body, 1);
        self.b.ins().jump(head, &args(&[next]));

        self.b.switch_to_block(exit);
        self.b.ins().return_(&[]);
        Ok(())
    }

    /// The vertical function of a kernel with a SIMD loop: `out` holds one pointer per output,
    /// to `n` accumulators of its accumulator dtype side by side (bool: bytes 0 or 1), so that
    /// `L` neighbouring kept positions combine as one vector (float32 sums: two float64
    /// vectors). Every accumulator sees the same operations in the same order as in the scalar
    /// loop (which finishes the tail and takes strided runs), so the bits do not depend on
    /// which loop ran.
    fn vertical_simd(&mut self, width: usize) -> Result<()> {
        let k = self.k;
        let p = self.entry();
        let reds = reductions(k);
        let accp: Vec<Value> = (0..reds.len())
            .map(|o| self.b.ins().load(types::I64, mem(), p.out, (o * 8) as i32))
            .collect();
        let mode = Mode::Vector { width };
        let lanes = mode.lanes();
        let unroll = STORE_UNROLL;
        let step = (lanes * unroll) as i64;
        let widened = |r: &Red| r.acc != r.dt && !r.dt.is_bool();

        let (contiguous, broadcast) = self.layout_test(&p);
        let nv = self.b.ins().band_imm_s(p.n, -step);
        let has = self.b.ins().icmp_imm_s(IntCC::NotEqual, nv, 0);
        let go = self.b.ins().band(contiguous, has);
        let prep = self.b.create_block();
        let vbody = self.b.create_block();
        let head = self.b.create_block();
        let body = self.b.create_block();
        let exit = self.b.create_block();
        let i_v = self.b.append_block_param(vbody, types::I64);
        let i_head = self.b.append_block_param(head, types::I64);
        let i_body = self.b.append_block_param(body, types::I64);
        let zero_i = self.b.ins().iconst(types::I64, 0);
        self.b.ins().brif(go, prep, &[], head, &args(&[zero_i]));

        self.b.switch_to_block(prep);
        let (vbases, vsteps) = self.splat_inputs(mode, unroll, &p, &broadcast);
        self.b.ins().jump(vbody, &args(&[zero_i]));

        self.b.switch_to_block(vbody);
        let addrs = self.addrs_at(&vbases, &vsteps, i_v);
        let mut acc_addrs = Vec::new();
        for (o, r) in reds.iter().enumerate() {
            let off = self.b.ins().imul_imm_s(i_v, r.acc.size() as i64);
            acc_addrs.push(self.b.ins().iadd(accp[o], off));
        }
        for u in 0..unroll {
            let vals = self.body(mode, &addrs, u)?;
            for (o, r) in reds.iter().enumerate() {
                let x = r.value.index();
                let at = acc_addrs[o];
                let offset = (u * lanes * r.acc.size()) as i32;
                if r.dt.is_bool() {
                    let v = self.mask_resize(mode, vals[x], self.mask_w[x], 1);
                    let a = self.load_v(mode, DType::Bool, at, offset);
                    let c = self.binary_v(mode, r.op.combine(), DType::Bool, DType::Bool, a, v)?;
                    self.store_v(mode, DType::Bool, (c, 1), at, offset);
                } else if widened(r) {
                    // float32 lanes summed in float64: the low half, then the high half.
                    let (lo, hi) = self.widen_f32x4(vals[x]);
                    for (half, v) in [lo, hi].into_iter().enumerate() {
                        let off = offset + (half * VEC_BYTES) as i32;
                        let a = self.b.ins().load(types::F64X2, mem(), at, off);
                        let c = self.b.ins().fadd(a, v);
                        self.b.ins().store(mem(), c, at, off);
                    }
                } else {
                    let a = self.b.ins().load(mode.ty(r.acc), mem(), at, offset);
                    let c = self.binary_v(mode, r.op.combine(), r.acc, r.acc, a, vals[x])?;
                    self.b.ins().store(mem(), c, at, offset);
                }
            }
        }
        let next = self.b.ins().iadd_imm_s(i_v, step);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, next, nv);
        self.b
            .ins()
            .brif(more, vbody, &args(&[next]), head, &args(&[next]));

        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i_head, p.n);
        self.b.ins().brif(more, body, &args(&[i_head]), exit, &[]);

        self.b.switch_to_block(body);
        let addrs = self.addrs_at(&p.bases, &p.steps, i_body);
        let vals = self.body(Mode::Scalar, &addrs, 0)?;
        for (o, r) in reds.iter().enumerate() {
            let off = self.b.ins().imul_imm_s(i_body, r.acc.size() as i64);
            let at = self.b.ins().iadd(accp[o], off);
            let acc = self.b.ins().load(scalar_type(r.acc), mem(), at, 0);
            let c = self.combine_s(r, acc, vals[r.value.index()])?;
            self.b.ins().store(mem(), c, at, 0);
        }
        let next = self.b.ins().iadd_imm_s(i_body, 1);
        self.b.ins().jump(head, &args(&[next]));

        self.b.switch_to_block(exit);
        self.b.ins().return_(&[]);
        Ok(())
    }

    /// Each input's address of element `i`: `bases[j] + i * steps[j]`.
    fn addrs_at(&mut self, bases: &[Value], steps: &[Value], i: Value) -> Vec<Value> {
        bases
            .iter()
            .zip(steps)
            .map(|(base, step)| {
                let off = self.b.ins().imul(i, *step);
                self.b.ins().iadd(*base, off)
            })
            .collect()
    }

    /// Whether every input's step is its element size or 0 (the SIMD loops' layout), and per
    /// input whether it is 0 (a broadcast input).
    fn layout_test(&mut self, p: &Params) -> (Value, Vec<Value>) {
        let mut contiguous = self.b.ins().iconst(types::I8, 1);
        let mut broadcast = Vec::with_capacity(self.k.inputs.len());
        for (j, dt) in self.k.inputs.iter().enumerate() {
            let c = self
                .b
                .ins()
                .icmp_imm_s(IntCC::Equal, p.steps[j], dt.size() as i64);
            let z = self.b.ins().icmp_imm_s(IntCC::Equal, p.steps[j], 0);
            let c = self.b.ins().bor(c, z);
            contiguous = self.b.ins().band(contiguous, c);
            broadcast.push(z);
        }
        (contiguous, broadcast)
    }

    /// Broadcast inputs splatted once per call, into `unroll` vectors on the stack that the
    /// SIMD loop reads in place of the input: each input's vector base and step (the loop's
    /// address arithmetic is the same for both layouts). The run must not be empty, so that
    /// every input's first element can be read.
    fn splat_inputs(
        &mut self,
        mode: Mode,
        unroll: usize,
        p: &Params,
        broadcast: &[Value],
    ) -> (Vec<Value>, Vec<Value>) {
        let k = self.k;
        let ptr = self.b.func.dfg.value_type(p.n);
        let per_input = (unroll * VEC_BYTES) as u32;
        let splats = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            per_input * k.inputs.len().max(1) as u32,
            4,
        ));
        let zero_step = self.b.ins().iconst(types::I64, 0);
        let mut vbases = Vec::with_capacity(k.inputs.len());
        let mut vsteps = Vec::with_capacity(k.inputs.len());
        for (j, dt) in k.inputs.iter().enumerate() {
            let x = self.b.ins().load(scalar_type(*dt), mem(), p.bases[j], 0);
            // In memory's layout (a bool is a byte), as `Gen::load_v` reads it.
            let t = if dt.is_bool() {
                types::I8X16
            } else {
                mode.ty(*dt)
            };
            let v = self.b.ins().splat(t, x);
            let at = (j as u32 * per_input) as i32;
            for u in 0..unroll {
                self.b
                    .ins()
                    .stack_store(ptr, v, splats, at + (u * VEC_BYTES) as i32);
            }
            let slot = self.b.ins().stack_addr(ptr, splats, at);
            let size = self.b.ins().iconst(types::I64, dt.size() as i64);
            vbases.push(self.b.ins().select(broadcast[j], slot, p.bases[j]));
            vsteps.push(self.b.ins().select(broadcast[j], zero_step, size));
        }
        (vbases, vsteps)
    }

    /// `acc (+) v` for a reduction in scalar code (`v` in the operand dtype).
    fn combine_s(&mut self, r: &Red, acc: Value, v: Value) -> Result<Value> {
        let v = if r.acc != r.dt {
            self.cast_s(r.dt, r.acc, v)
        } else {
            v
        };
        self.binary_s(r.op.combine(), r.acc, acc, v)
    }

    /// One step of `argmin`/`argmax`: take `(v, pos)` if the accumulator is empty, or `v` is
    /// strictly better, or `v` is the first NaN.
    fn arg_step(
        &mut self,
        r: &Red,
        acc: Value,
        acc_pos: Value,
        v: Value,
        pos: Value,
    ) -> Result<(Value, Value)> {
        let cmp = if r.op == ReduceOp::ArgMin {
            BinaryOp::Lt
        } else {
            BinaryOp::Gt
        };
        let mut better = self.binary_s(cmp, r.dt, v, acc)?;
        if r.dt.is_float() {
            let v_nan = self.b.ins().fcmp(FloatCC::Unordered, v, v);
            let acc_nan = self.b.ins().fcmp(FloatCC::Unordered, acc, acc);
            let b = self.b.ins().bor(better, v_nan);
            better = self.b.ins().band_not(b, acc_nan);
        }
        let empty = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, acc_pos, 0);
        let take = self.b.ins().bor(better, empty);
        Ok((
            self.b.ins().select(take, v, acc),
            self.b.ins().select(take, pos, acc_pos),
        ))
    }

    fn zero(&mut self, t: Type) -> Value {
        if t == types::F64 {
            self.b.ins().f64const(0.0)
        } else if t == types::F32 {
            self.b.ins().f32const(0.0)
        } else if t.is_vector() {
            let s = self.zero(t.lane_type());
            self.b.ins().splat(t, s)
        } else {
            self.b.ins().iconst(t, 0)
        }
    }

    /// Emit the SIMD loop. Ends the current block with a branch; leaves into `scalar_head` with
    /// the index reached (and each reduction's accumulator).
    fn simd_loop(
        &mut self,
        width: usize,
        p: &Params,
        outs: &[Value],
        reds: &[Red],
        acc0: &[Value],
        scalar_head: cranelift_codegen::ir::Block,
    ) -> Result<()> {
        let k = self.k;
        let mode = Mode::Vector { width };
        let lanes = mode.lanes();
        let unroll = if reds.is_empty() {
            STORE_UNROLL
        } else if width == 4 {
            REDUCE_UNROLL / 2
        } else {
            REDUCE_UNROLL
        };
        let step = (lanes * unroll) as i64;
        // Vector accumulators per reduction: float32 sums are widened into two f64x2 halves.
        let widened = |r: &Red| r.op == ReduceOp::Sum && r.dt == DType::F32;
        let mut first = Vec::new();
        let mut vtys = Vec::new();
        // Float min/max: x86 `minp*`/`maxp*` steps, which drop NaNs, plus a lane mask of the
        // NaNs seen (the NaN is put back at the end).
        let fast = |r: &Red| matches!(r.op, ReduceOp::Min | ReduceOp::Max) && r.acc.is_float();
        for r in reds {
            first.push(vtys.len());
            if widened(r) {
                vtys.extend(std::iter::repeat_n(types::F64X2, 2 * unroll));
            } else {
                vtys.extend(std::iter::repeat_n(mode.ty(r.acc), unroll));
            }
            if fast(r) {
                vtys.push(mode.ty(DType::Bool));
            }
        }

        // Layout test (every input contiguous or broadcast: stride 0) and vector trip count.
        let (contiguous, broadcast) = self.layout_test(p);
        let nv = self.b.ins().band_imm_s(p.n, -step);
        let has = self.b.ins().icmp_imm_s(IntCC::NotEqual, nv, 0);
        let go = self.b.ins().band(contiguous, has);

        let ptr = self.b.func.dfg.value_type(p.n);
        let pool_slot =
            self.b
                .create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8, 3));
        let pool_addr = self.b.ins().symbol_value(ptr, self.pool_gv);
        self.b.ins().stack_store(ptr, pool_addr, pool_slot, 0);
        let body = self.b.create_block();
        let done = self.b.create_block();
        let i = self.b.append_block_param(body, types::I64);
        let i_done = self.b.append_block_param(done, types::I64);
        let mut accs = Vec::new();
        let mut accs_done = Vec::new();
        for t in &vtys {
            accs.push(self.b.append_block_param(body, *t));
            accs_done.push(self.b.append_block_param(done, *t));
        }
        let mut init = vec![self.b.ins().iconst(types::I64, 0)];
        for r in reds {
            if widened(r) {
                for _ in 0..2 * unroll {
                    init.push(self.zero(types::F64X2));
                }
            } else {
                for _ in 0..unroll {
                    let c = self.constant(mode, acc_identity(r.op, r.acc));
                    init.push(c);
                }
            }
            if fast(r) {
                let none = self.constant(mode, Const::Bool(false));
                init.push(none);
            }
        }
        let mut scalar_start = vec![self.b.ins().iconst(types::I64, 0)];
        scalar_start.extend(acc0);
        let prep = self.b.create_block();
        self.b
            .ins()
            .brif(go, prep, &[], scalar_head, &args(&scalar_start));

        // Broadcast inputs are splatted once per call (see `splat_inputs`).
        self.b.switch_to_block(prep);
        let (vbases, vsteps) = self.splat_inputs(mode, unroll, p, &broadcast);
        self.b.ins().jump(body, &args(&init));

        self.b.switch_to_block(body);
        // The constant pool's address, reloaded from a stack slot in every iteration: the
        // constants' loads depend on it, so Cranelift keeps them in the loop, next to their
        // uses (see `operand`).
        // A kernel with few constants keeps them in registers instead (splatted once, before
        // the loop): then they cost no load at all.
        let consts = k
            .insts
            .iter()
            .filter(|d| matches!(d.inst, Inst::Const(c) if c.dtype() != DType::Bool))
            .count();
        if consts > REG_CONSTS {
            self.pool_base = Some(self.b.ins().stack_load(ptr, ptr, pool_slot, 0));
        }
        let addrs = self.addrs_at(&vbases, &vsteps, i);
        let mut out_addrs = Vec::new();
        for (o, out) in outs.iter().enumerate() {
            let size = k.dtype_of(k.outputs[o]).size() as i64;
            let off = self.b.ins().imul_imm_s(i, size);
            out_addrs.push(self.b.ins().iadd(*out, off));
        }
        let mut new_accs = accs.clone();
        for u in 0..unroll {
            let vals = self.body(mode, &addrs, u)?;
            for (o, addr) in out_addrs.iter().enumerate() {
                let x = k.outputs[o].value().index();
                let dt = k.dtype_of(k.outputs[o]);
                let offset = (u * lanes * dt.size()) as i32;
                self.store_v(mode, dt, (vals[x], self.mask_w[x]), *addr, offset);
            }
            for (ri, r) in reds.iter().enumerate() {
                // Masks at the widest width; numbers fill whole vectors (`simd_width`).
                let x = r.value.index();
                let v = self.mask_resize(mode, vals[x], self.mask_w[x], width);
                let a = first[ri];
                if widened(r) {
                    let (lo, hi) = self.widen_f32x4(v);
                    new_accs[a + 2 * u] = self.b.ins().fadd(new_accs[a + 2 * u], lo);
                    new_accs[a + 2 * u + 1] = self.b.ins().fadd(new_accs[a + 2 * u + 1], hi);
                } else if fast(r) {
                    new_accs[a + u] = self.minmax_v(mode, r, new_accs[a + u], v);
                    let nan = self.b.ins().fcmp(FloatCC::Unordered, v, v);
                    let nan = self.mask_as(nan, mode.ty(DType::Bool));
                    new_accs[a + unroll] = self.b.ins().bor(new_accs[a + unroll], nan);
                } else {
                    new_accs[a + u] =
                        self.binary_v(mode, r.op.combine(), r.acc, r.acc, new_accs[a + u], v)?;
                }
            }
        }
        let next = self.b.ins().iadd_imm_s(i, step);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, next, nv);
        let mut back = vec![next];
        back.extend(&new_accs);
        self.b
            .ins()
            .brif(more, body, &args(&back), done, &args(&back));

        // Combine each reduction's vectors pairwise, then its lanes, then the accumulator the
        // function started from; the scalar loop finishes the tail.
        self.b.switch_to_block(done);
        let mut leave = vec![i_done];
        for (ri, r) in reds.iter().enumerate() {
            let count = if widened(r) { 2 * unroll } else { unroll };
            let mut level: Vec<Value> = accs_done[first[ri]..first[ri] + count].to_vec();
            while level.len() > 1 {
                let mut nextl = Vec::new();
                for pair in level.chunks(2) {
                    nextl.push(if pair.len() == 2 {
                        if widened(r) {
                            self.b.ins().fadd(pair[0], pair[1])
                        } else if fast(r) {
                            self.minmax_v(mode, r, pair[0], pair[1])
                        } else {
                            self.binary_v(mode, r.op.combine(), r.acc, r.acc, pair[0], pair[1])?
                        }
                    } else {
                        pair[0]
                    });
                }
                level = nextl;
            }
            let v = level[0];
            let n_lanes = if widened(r) { 2 } else { lanes };
            let mut s: Option<Value> = None;
            for lane in 0..n_lanes {
                let mut x = self.b.ins().extractlane(v, lane as u8);
                if r.acc == DType::Bool {
                    x = self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0);
                }
                s = Some(match s {
                    None => x,
                    Some(a) => self.binary_s(r.op.combine(), r.acc, a, x)?,
                });
            }
            let mut s = s.ok_or_else(|| Error::Compile {
                message: "vector with no lanes".into(),
            })?;
            if fast(r) {
                let any = self.b.ins().vany_true(accs_done[first[ri] + count]);
                let nan = self.fconst(scalar_type(r.acc), f64::NAN);
                s = self.b.ins().select(any, nan, s);
            }
            leave.push(self.binary_s(r.op.combine(), r.acc, acc0[ri], s)?);
        }
        self.pool_base = None;
        self.b.ins().jump(scalar_head, &args(&leave));
        Ok(())
    }

    /// One vector step of a float min/max reduction as a single `minp*`/`maxp*`: `v` if it is
    /// strictly better than `acc`, else `acc` (a NaN `v` is dropped: the caller tracks NaNs).
    fn minmax_v(&mut self, mode: Mode, r: &Red, acc: Value, v: Value) -> Value {
        let c = if r.op == ReduceOp::Min {
            self.b.ins().fcmp(FloatCC::LessThan, v, acc)
        } else {
            self.b.ins().fcmp(FloatCC::LessThan, acc, v)
        };
        let c = self.mask_as(c, mode.ty(r.acc));
        self.b.ins().bitselect(c, v, acc)
    }

    /// The two f64x2 halves of an f32x4.
    fn widen_f32x4(&mut self, v: Value) -> (Value, Value) {
        let lo = self.b.ins().fvpromote_low(v);
        let bytes = self.b.ins().bitcast(types::I8X16, lanes_flags(), v);
        let mask: Vec<u8> = (8..16).chain(8..16).collect();
        let imm = self.b.func.dfg.immediates.push(ConstantData::from(mask));
        let moved = self.b.ins().shuffle(bytes, bytes, imm);
        let high = self.b.ins().bitcast(types::F32X4, lanes_flags(), moved);
        let hi = self.b.ins().fvpromote_low(high);
        (lo, hi)
    }
}

fn float_cc(op: BinaryOp) -> FloatCC {
    match op {
        BinaryOp::Eq => FloatCC::Equal,
        BinaryOp::Ne => FloatCC::NotEqual,
        BinaryOp::Lt => FloatCC::LessThan,
        BinaryOp::Le => FloatCC::LessThanOrEqual,
        BinaryOp::Gt => FloatCC::GreaterThan,
        _ => FloatCC::GreaterThanOrEqual,
    }
}

fn int_cc(op: BinaryOp, signed: bool) -> IntCC {
    match (op, signed) {
        (BinaryOp::Eq, _) => IntCC::Equal,
        (BinaryOp::Ne, _) => IntCC::NotEqual,
        (BinaryOp::Lt, true) => IntCC::SignedLessThan,
        (BinaryOp::Le, true) => IntCC::SignedLessThanOrEqual,
        (BinaryOp::Gt, true) => IntCC::SignedGreaterThan,
        (_, true) => IntCC::SignedGreaterThanOrEqual,
        (BinaryOp::Lt, false) => IntCC::UnsignedLessThan,
        (BinaryOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
        (BinaryOp::Gt, false) => IntCC::UnsignedGreaterThan,
        (_, false) => IntCC::UnsignedGreaterThanOrEqual,
    }
}
