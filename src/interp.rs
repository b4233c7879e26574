//! A kernel-IR interpreter: evaluates a verified [`Kernel`] element by element with the
//! scalar definitions in [`crate::semantics`]. Slow and obviously right; tests use it to check
//! the optimizer's kernels apart from any code generator.
use crate::array::{checked_len, ArgView, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::{Call, Const, Inst, Kernel, Output};
use crate::ops::{BinaryOp, ReduceOp};
use crate::semantics;
use ndarray::{ArrayD, IxDyn};

fn read(v: &ArgView<'_>, idx: &[usize]) -> Const {
    let ix = IxDyn(idx);
    match v {
        ArgView::Bool(a) => Const::Bool(a[ix]),
        ArgView::I32(a) => Const::I32(a[ix]),
        ArgView::I64(a) => Const::I64(a[ix]),
        ArgView::I8(a) => Const::I8(a[ix]),
        ArgView::I16(a) => Const::I16(a[ix]),
        ArgView::U8(a) => Const::U8(a[ix]),
        ArgView::U16(a) => Const::U16(a[ix]),
        ArgView::U32(a) => Const::U32(a[ix]),
        ArgView::U64(a) => Const::U64(a[ix]),
        ArgView::F16(a) => Const::F16(a[ix]),
        ArgView::F32(a) => Const::F32(a[ix]),
        ArgView::F64(a) => Const::F64(a[ix]),
    }
}

/// Run `k` over the iteration space `out_shape` reducing every axis (same contract as the
/// backends' `run`): the first output.
pub fn run(k: &Kernel, inputs: &[ArgView<'_>], out_shape: &[usize]) -> Result<DynArray> {
    let axes: Vec<usize> = if k.is_reduction() {
        (0..out_shape.len()).collect()
    } else {
        vec![]
    };
    let mut outs = run_many(k, inputs, out_shape, &axes)?;
    Ok(outs.swap_remove(0))
}

/// Run `k` over the iteration space `shape`, its reductions combining over `axes` (sorted):
/// one array per output, of `shape` for stores and of the kept axes' shape for reductions.
pub fn run_many(
    k: &Kernel,
    inputs: &[ArgView<'_>],
    shape: &[usize],
    axes: &[usize],
) -> Result<Vec<DynArray>> {
    k.verify()?;
    k.check_args(inputs, shape)?;
    k.check_axes(axes, shape.len())?;
    let n = checked_len(shape, 8)?;
    let kept_shape: Vec<usize> = (0..shape.len())
        .filter(|d| !axes.contains(d))
        .map(|d| shape[d])
        .collect();
    let kept_n: usize = kept_shape.iter().product();
    let red_n: usize = axes.iter().map(|&d| shape[d]).product();
    let mut vals = vec![Const::Bool(false); k.insts.len()];
    let mut stores: Vec<Vec<Const>> = vec![vec![]; k.outputs.len()];
    // Per reduction output and kept position: the accumulator and the position it came from.
    let mut accs: Vec<Vec<Option<(Const, i64)>>> = vec![vec![None; kept_n]; k.outputs.len()];
    let mut idx = vec![0usize; shape.len()];
    for flat in 0..n {
        let mut rem = flat;
        for d in (0..shape.len()).rev() {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        for (i, d) in k.insts.iter().enumerate() {
            vals[i] =
                match d.inst {
                    Inst::Load { input } => {
                        let v = &inputs[input as usize];
                        let lead = shape.len() - v.shape().len();
                        let local: Vec<usize> = v
                            .shape()
                            .iter()
                            .enumerate()
                            .map(|(j, &s)| if s == 1 { 0 } else { idx[lead + j] })
                            .collect();
                        read(v, &local)
                    }
                    Inst::Const(c) => c,
                    Inst::Unary { op, arg } => semantics::fold_unary(op, vals[arg.index()]),
                    Inst::Binary { op, lhs, rhs } => {
                        semantics::fold_binary(op, vals[lhs.index()], vals[rhs.index()])
                            .ok_or_else(|| Error::InvalidKernel {
                                message: format!("v{i}: mixed operands"),
                            })?
                    }
                    Inst::Select {
                        cond,
                        on_true,
                        on_false,
                    } => match vals[cond.index()] {
                        Const::Bool(true) => vals[on_true.index()],
                        _ => vals[on_false.index()],
                    },
                    Inst::Cast { arg } => semantics::cast(vals[arg.index()], d.ty),
                    Inst::Bitcast { arg } => semantics::bitcast(vals[arg.index()], d.ty)
                        .ok_or_else(|| Error::InvalidKernel {
                            message: format!("v{i}: bad bitcast"),
                        })?,
                    // The scalar function where the condition holds, the value elsewhere.
                    Inst::Fallback { cond, value, call } => match vals[cond.index()] {
                        Const::Bool(true) => match call {
                            Call::Unary(op, a) => semantics::fold_unary(op, vals[a.index()]),
                            Call::Binary(op, a, b) => {
                                semantics::fold_binary(op, vals[a.index()], vals[b.index()])
                                    .ok_or_else(|| Error::InvalidKernel {
                                        message: format!("v{i}: mixed operands"),
                                    })?
                            }
                        },
                        _ => vals[value.index()],
                    },
                    Inst::Fma { a, b, c } => {
                        semantics::fma(vals[a.index()], vals[b.index()], vals[c.index()])
                            .ok_or_else(|| Error::InvalidKernel {
                                message: format!("v{i}: fma of non-floats"),
                            })?
                    }
                    Inst::Lookup { table, index } => match vals[index.index()] {
                        Const::I64(j) => table.get(j),
                        Const::I32(j) => table.get(j as i64),
                        _ => {
                            return Err(Error::InvalidKernel {
                                message: format!("v{i}: non-integer index"),
                            })
                        }
                    },
                };
        }
        // Position among the kept axes (the output element) and among the reduced axes.
        let (mut kept, mut red) = (0usize, 0i64);
        for d in 0..shape.len() {
            if axes.contains(&d) {
                red = red * shape[d] as i64 + idx[d] as i64;
            } else {
                kept = kept * shape[d] + idx[d];
            }
        }
        for (o, out) in k.outputs.iter().enumerate() {
            match *out {
                Output::Store { value } => stores[o].push(vals[value.index()]),
                Output::Reduce { op, value } => {
                    let v = vals[value.index()];
                    let slot = &mut accs[o][kept];
                    *slot = Some(match *slot {
                        None => (v, red),
                        Some((a, pos)) => combine(op, (a, pos), (v, red)),
                    });
                }
            }
        }
    }
    let mut results = Vec::with_capacity(k.outputs.len());
    for (o, out) in k.outputs.iter().enumerate() {
        let t = k.dtype_of(*out);
        match *out {
            Output::Store { .. } => {
                results.push(from_consts(t, shape, std::mem::take(&mut stores[o])))
            }
            Output::Reduce { op, value } => {
                let acc_t = k.ty(value);
                let mut vals = Vec::with_capacity(kept_n);
                for slot in &accs[o] {
                    vals.push(match (*slot, op.is_arg()) {
                        (Some((_, pos)), true) => Const::I64(pos),
                        (Some((a, _)), false) => a,
                        (None, _) => op.identity(acc_t).ok_or_else(|| Error::EmptyReduction {
                            op: op.name().into(),
                        })?,
                    });
                }
                debug_assert!(red_n > 0 || kept_n == 0 || op.identity(acc_t).is_some());
                results.push(from_consts(t, &kept_shape, vals));
            }
        }
    }
    Ok(results)
}

/// Combine an accumulator with the next value in C order.
fn combine(op: ReduceOp, (a, apos): (Const, i64), (v, vpos): (Const, i64)) -> (Const, i64) {
    if op.is_arg() {
        // The first extremum wins; a NaN beats everything and the first NaN stays.
        let is_nan = |c: Const| {
            c.as_f64().is_nan() && matches!(c, Const::F16(_) | Const::F32(_) | Const::F64(_))
        };
        if is_nan(a) {
            return (a, apos);
        }
        if is_nan(v) {
            return (v, vpos);
        }
        let cmp = if op == ReduceOp::ArgMin {
            BinaryOp::Lt
        } else {
            BinaryOp::Gt
        };
        return match semantics::fold_binary(cmp, v, a) {
            Some(Const::Bool(true)) => (v, vpos),
            _ => (a, apos),
        };
    }
    let r = semantics::fold_binary(op.combine(), a, v).unwrap_or(a);
    (r, apos)
}

fn from_consts(dtype: DType, shape: &[usize], v: Vec<Const>) -> DynArray {
    macro_rules! build {
        ($variant:ident) => {
            ArrayD::from_shape_vec(
                IxDyn(shape),
                v.into_iter()
                    .map(|c| match semantics::cast(c, dtype) {
                        Const::$variant(x) => x,
                        _ => unreachable!("cast gives the requested dtype"),
                    })
                    .collect(),
            )
            .expect("length matches shape")
            .into()
        };
    }
    match dtype {
        DType::Bool => build!(Bool),
        DType::I32 => build!(I32),
        DType::I64 => build!(I64),
        DType::I8 => build!(I8),
        DType::I16 => build!(I16),
        DType::U8 => build!(U8),
        DType::U16 => build!(U16),
        DType::U32 => build!(U32),
        DType::U64 => build!(U64),
        DType::F16 => build!(F16),
        DType::F32 => build!(F32),
        DType::F64 => build!(F64),
    }
}
