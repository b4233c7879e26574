//! A kernel-IR interpreter: evaluates a verified [`Kernel`] element by element with the
//! scalar definitions in [`crate::semantics`]. Slow and obviously right; tests use it to check
//! the optimizer's kernels apart from any code generator.
use crate::array::{checked_len, ArgView, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::{Const, Inst, Kernel, Output};
use crate::semantics;
use ndarray::{ArrayD, IxDyn};

fn read(v: &ArgView<'_>, idx: &[usize]) -> Const {
    let ix = IxDyn(idx);
    match v {
        ArgView::Bool(a) => Const::Bool(a[ix]),
        ArgView::I32(a) => Const::I32(a[ix]),
        ArgView::I64(a) => Const::I64(a[ix]),
        ArgView::F32(a) => Const::F32(a[ix]),
        ArgView::F64(a) => Const::F64(a[ix]),
    }
}

/// Run `k` over the iteration space `out_shape` (same contract as the backends' `run`).
pub fn run(k: &Kernel, inputs: &[ArgView<'_>], out_shape: &[usize]) -> Result<DynArray> {
    k.verify()?;
    k.check_args(inputs, out_shape)?;
    let n = checked_len(out_shape, k.output_dtype().size())?;
    let mut vals = vec![Const::Bool(false); k.insts.len()];
    let mut out = Vec::with_capacity(if k.is_reduction() { 0 } else { n });
    let mut acc: Option<Const> = None;
    let mut idx = vec![0usize; out_shape.len()];
    for flat in 0..n {
        let mut rem = flat;
        for d in (0..out_shape.len()).rev() {
            idx[d] = rem % out_shape[d];
            rem /= out_shape[d];
        }
        for (i, d) in k.insts.iter().enumerate() {
            vals[i] = match d.inst {
                Inst::Load { input } => {
                    let v = &inputs[input as usize];
                    let lead = out_shape.len() - v.shape().len();
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
                        .ok_or_else(|| Error::InvalidKernel(format!("v{i}: mixed operands")))?
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
                    .ok_or_else(|| Error::InvalidKernel(format!("v{i}: bad bitcast")))?,
            };
        }
        match k.output {
            Output::Store { value } => out.push(vals[value.index()]),
            Output::Reduce { op, value } => {
                let v = vals[value.index()];
                acc = Some(match acc {
                    None => v,
                    Some(a) => semantics::fold_binary(reduce_binary(op), a, v).unwrap_or(a),
                });
            }
        }
    }
    if let Output::Reduce { .. } = k.output {
        let zero = semantics::cast(Const::I64(0), k.output_dtype());
        return Ok(from_consts(
            k.output_dtype(),
            &[],
            vec![acc.unwrap_or(zero)],
        ));
    }
    Ok(from_consts(k.output_dtype(), out_shape, out))
}

fn reduce_binary(op: crate::ops::ReduceOp) -> crate::ops::BinaryOp {
    match op {
        crate::ops::ReduceOp::Sum => crate::ops::BinaryOp::Add,
    }
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
        DType::F32 => build!(F32),
        DType::F64 => build!(F64),
    }
}
