//! The row form of a plan on the CPU ([`crate::opt::epilogue`]): the passes run block of rows
//! by block of rows, each block on one thread, so the block stays in that core's cache from
//! the first pass to the last.
//!
//! Per block: plan inputs read per block are the block's rows of the input (a borrow, no
//! copy); inputs read whole are borrowed as they are; a temporary lives in the block's scratch
//! (a block-sized array, reused from the allocator while it is hot) unless it is a result of
//! the plan, which is also written to its rows of the full result array. The last store of a
//! result is written directly into that array (or the caller's `out`, sliced the same way)
//! with [`crate::cpu::CpuBackend::run_into`].
use super::run::{Buffer, IntoOut};
use super::RowExec;
use crate::array::{ArgView, ArgViewMut, DynArray};
use crate::cpu::Alias;
use crate::devices::Devices;
use crate::error::{Error, Result};
use crate::opt::Buf;
use ndarray::{ArcArray, Axis, IxDyn, Slice};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::time::Instant;

/// One block's rows of the plan's result arrays: (temporary, its rows).
type Pieces<'o> = Vec<(u32, ArgViewMut<'o>)>;

/// Rows `lo..hi` of `v` (along axis 0), borrowed.
fn rows_of<'a>(v: &'a ArgView<'_>, lo: usize, hi: usize) -> ArgView<'a> {
    macro_rules! cut {
        ($($var:ident),*) => {
            match v {
                $(ArgView::$var(a) => {
                    ArgView::$var(a.clone().slice_axis_move(Axis(0), Slice::from(lo..hi)))
                })*
            }
        };
    }
    cut!(Bool, I32, I64, I8, I16, U8, U16, U32, U64, F16, F32, F64)
}

/// `v` cut along axis 0 into consecutive pieces of `block` rows (the last one shorter).
fn split_rows(v: ArgViewMut<'_>, block: usize) -> Vec<ArgViewMut<'_>> {
    macro_rules! split {
        ($($var:ident),*) => {
            match v {
                $(ArgViewMut::$var(mut a) => {
                    let mut out = vec![];
                    while a.len_of(Axis(0)) > block {
                        let (head, tail) = a.split_at(Axis(0), block);
                        out.push(ArgViewMut::$var(head));
                        a = tail;
                    }
                    out.push(ArgViewMut::$var(a));
                    out
                })*
            }
        };
    }
    split!(Bool, I32, I64, I8, I16, U8, U16, U32, U64, F16, F32, F64)
}

/// A fresh array of `shape` (zeroed: the allocator hands large ones out as untouched pages).
fn fresh(t: crate::dtype::DType, shape: &[usize]) -> DynArray {
    crate::with_dtype!(t, T => <T as crate::array::Element>::wrap(
        ArcArray::<T, IxDyn>::from_elem(IxDyn(shape), T::default())
    ))
}

/// Run the row form `rx` on host `inputs`: the plan's results (as [`super::run`]'s step loop
/// returns them), or `None` when an input is not on the host (the caller runs the steps).
pub(super) fn run_rows<'a>(
    devices: &Devices,
    rx: &RowExec,
    inputs: &[Buffer<'a>],
    into: &mut Option<IntoOut<'_, '_>>,
) -> Result<Option<Vec<Buffer<'a>>>> {
    let rp = &rx.plan;
    let start = Instant::now();
    let host = |i: u32| -> Result<Option<ArgView<'_>>> {
        match inputs.get(i as usize) {
            Some(Buffer::View(v)) => Ok(Some(v.reborrow())),
            Some(Buffer::Host(h)) => Ok(Some(h.view())),
            Some(Buffer::Gpu(_)) => Ok(None),
            None => Err(Error::InvalidKernel {
                message: format!("plan input {i} not bound"),
            }),
        }
    };
    // Host copies for the inputs a step cannot read as they are (another shape, or a reshape
    // of data that is not C-contiguous), as the step loop makes them.
    let mut held: Vec<DynArray> = vec![];
    let mut held_at: HashMap<(usize, usize), usize> = HashMap::new();
    for (si, s) in rp.steps.iter().enumerate() {
        for (j, (b, shape)) in s.args.iter().zip(&s.arg_shapes).enumerate() {
            let Buf::Input(i) = *b else { continue };
            let Some(v) = host(i)? else {
                return Ok(None);
            };
            let (shape, contiguous) = match &s.arg_views[j] {
                Some(a) => (&a.base_shape, a.views[0].needs_contiguous()),
                None => (shape, false),
            };
            if v.shape() != shape.as_slice() || (contiguous && !v.is_standard_layout()) {
                held_at.insert((si, j), held.len());
                held.push(v.try_to_dyn_array()?.reshaped(shape)?);
            }
        }
    }
    // Each input argument as its step reads it over the whole space.
    let mut whole: Vec<Vec<Option<ArgView<'_>>>> = Vec::with_capacity(rp.steps.len());
    for (si, s) in rp.steps.iter().enumerate() {
        let mut row = Vec::with_capacity(s.args.len());
        for (j, b) in s.args.iter().enumerate() {
            let Buf::Input(i) = *b else {
                row.push(None);
                continue;
            };
            let v = match held_at.get(&(si, j)) {
                Some(&h) => held[h].view(),
                None => host(i)?.expect("host inputs checked above"),
            };
            row.push(Some(match &s.arg_views[j] {
                Some(a) => super::run::apply_views(v, a)?,
                None => v,
            }));
        }
        whole.push(row);
    }
    // The producer (step, output) of every temporary, and the temporaries a later pass reads.
    let mut producer: HashMap<u32, (usize, usize)> = HashMap::new();
    for (si, s) in rp.steps.iter().enumerate() {
        for (o, t) in s.temps.iter().enumerate() {
            producer.insert(*t, (si, o));
        }
    }
    let read: std::collections::HashSet<u32> = rp
        .steps
        .iter()
        .flat_map(|s| s.args.iter())
        .filter_map(|b| match b {
            Buf::Temp(t) => Some(*t),
            Buf::Input(_) => None,
        })
        .collect();
    // The caller's `out` takes the first result where it has that result's stored shape and no
    // input overlaps it other than exactly.
    let all_inputs: Vec<ArgView<'_>> = whole.iter().flatten().flatten().cloned().collect();
    // `into` names the first result by the kernels' numbering; here it is the row form's
    // first result.
    let first = rp.results.first().map(|(t, _)| *t).unwrap_or(u32::MAX);
    let mut direct = into.take_if(|i| {
        rp.results.iter().filter(|(u, _)| *u == first).count() == 1
            && producer.get(&first).is_some_and(|&(si, o)| {
                rp.steps[si].out_shapes[o].as_slice() == i.out.shape()
                    && crate::cpu::alias(&all_inputs, &*i.out) != Alias::Partial
            })
    });
    let wrote_into = direct.is_some();
    // The results' full arrays (the one in `out` excepted).
    let mut full: Vec<(u32, DynArray)> = vec![];
    for (t, _) in &rp.results {
        if full.iter().any(|(u, _)| u == t) || (direct.is_some() && *t == first) {
            continue;
        }
        let (si, o) = producer
            .get(t)
            .copied()
            .ok_or_else(|| Error::InvalidKernel {
                message: format!("result t{t} has no producer"),
            })?;
        let s = &rp.steps[si];
        full.push((
            *t,
            fresh(s.kernel.dtype_of(s.kernel.outputs[o]), &s.out_shapes[o]),
        ));
    }
    let block = rp.block_rows.max(1);
    let blocks = rp.rows.div_ceil(block);
    // Per block: (temporary, its rows of the result array).
    let mut pieces: Vec<Pieces<'_>> = (0..blocks).map(|_| vec![]).collect();
    let mut targets: Vec<(u32, ArgViewMut<'_>)> =
        full.iter_mut().map(|(t, a)| (*t, a.view_mut())).collect();
    if let Some(d) = direct.as_mut() {
        targets.push((first, d.out.reborrow()));
    }
    for (t, v) in targets {
        for (b, piece) in split_rows(v, block).into_iter().enumerate() {
            pieces[b].push((t, piece));
        }
    }
    let cpu = devices.cpu()?;
    // Jobs of consecutive blocks (a few per thread), so a job's scratch arrays are allocated
    // once and reused from block to block while they are in cache.
    let per_job = blocks.div_ceil(4 * cpu.threads().max(1)).max(1);
    let mut jobs: Vec<Vec<(usize, Pieces<'_>)>> = vec![];
    for (b, p) in pieces.into_iter().enumerate() {
        if b % per_job == 0 {
            jobs.push(vec![]);
        }
        jobs.last_mut().expect("pushed above").push((b, p));
    }
    let elems: usize = rp
        .steps
        .iter()
        .map(|s| s.shape.iter().product::<usize>())
        .sum();
    cpu.for_blocks(jobs, elems, |job| {
        // Block-sized arrays of the stores that stay in the block, reused by the job's blocks.
        let mut reuse: HashMap<u32, DynArray> = HashMap::new();
        for (bi, outs) in job {
            run_block(cpu, rx, &whole, &read, bi * block, block, outs, &mut reuse)?;
        }
        Ok(())
    })?;
    let (bytes_read, bytes_written) = rp.memory_bytes();
    devices.record(|st| {
        st.kernels_launched += rp.steps.len() as u64;
        st.bytes_read += bytes_read;
        st.bytes_written += bytes_written;
        st.cpu_time += start.elapsed();
    });
    let mut results = Vec::with_capacity(rp.results.len());
    for (i, (t, shape)) in rp.results.iter().enumerate() {
        if i == 0 && wrote_into {
            continue;
        }
        let a = full
            .iter()
            .find(|(u, _)| u == t)
            .map(|(_, a)| a)
            .ok_or_else(|| Error::InvalidKernel {
                message: format!("result t{t} was not computed"),
            })?;
        results.push(Buffer::Host(a.reshaped(shape)?));
    }
    // `into` was taken where `out` was written (then the first result is not in the list).
    Ok(Some(results))
}

/// Run every pass of `rx` over the block of rows starting at `lo` (at most `block` rows),
/// writing the plan's results into `outs` (this block's rows of each) and keeping the
/// block-local stores' arrays in `reuse` for the job's next block.
#[allow(clippy::too_many_arguments)]
fn run_block(
    cpu: &crate::cpu::CpuBackend,
    rx: &RowExec,
    whole: &[Vec<Option<ArgView<'_>>>],
    read: &std::collections::HashSet<u32>,
    lo: usize,
    block: usize,
    mut outs: Pieces<'_>,
    reuse: &mut HashMap<u32, DynArray>,
) -> Result<()> {
    let rp = &rx.plan;
    let kernels = &rx.kernels;
    let hi = (lo + block).min(rp.rows);
    let rows = hi - lo;
    let mut scratch: HashMap<u32, DynArray> = HashMap::new();
    for (si, s) in rp.steps.iter().enumerate() {
        let mut space = s.shape.clone();
        space[0] = rows;
        // Temporaries as this step reads them (their block, reshaped: shares the data).
        let mut temps: SmallVec<[Option<DynArray>; 4]> = SmallVec::new();
        for (b, shape) in s.args.iter().zip(&s.arg_shapes) {
            temps.push(match b {
                Buf::Temp(t) => {
                    let a = scratch.get(t).ok_or_else(|| Error::InvalidKernel {
                        message: format!("result t{t} read before it was computed"),
                    })?;
                    let mut shape = shape.clone();
                    shape[0] = rows;
                    Some(a.reshaped(&shape)?)
                }
                Buf::Input(_) => None,
            });
        }
        let mut views: SmallVec<[ArgView<'_>; 4]> = SmallVec::new();
        for (j, t) in temps.iter().enumerate() {
            views.push(match (t, &whole[si][j]) {
                (Some(a), _) => a.view(),
                (None, Some(v)) if rp.per_block[si][j] => rows_of(v, lo, hi),
                (None, Some(v)) => v.reborrow(),
                (None, None) => unreachable!("every argument is a temporary or an input"),
            });
        }
        let only = (s.temps.len() == 1 && !s.kernel.is_reduction()).then(|| s.temps[0]);
        let result = only.and_then(|t| outs.iter_mut().find(|(u, _)| *u == t));
        match (only, result) {
            (Some(t), Some(out)) if !read.contains(&t) => {
                cpu.run_into(&kernels[si], &views, &space, &mut out.1)?;
                continue;
            }
            (Some(t), None) => {
                // A store that stays in the block: into the job's reused array.
                let mut a = match reuse.remove(&t) {
                    Some(a) if a.shape() == space.as_slice() => a,
                    _ => fresh(s.kernel.output_dtype(), &space),
                };
                cpu.run_into(&kernels[si], &views, &space, &mut a.view_mut())?;
                drop(views);
                drop(temps);
                scratch.insert(t, a);
                continue;
            }
            _ => {}
        }
        let res = cpu.run_many(&kernels[si], &views, &space, &s.reduce_axes)?;
        for (a, t) in res.into_iter().zip(&s.temps) {
            if let Some((_, out)) = outs.iter_mut().find(|(u, _)| u == t) {
                let shape = out.shape().to_vec();
                out.assign(&a.reshaped(&shape)?.view())?;
            }
            if read.contains(t) {
                scratch.insert(*t, a);
            }
        }
    }
    // The block-local stores go back for the next block.
    for (t, a) in scratch {
        if !s_is_reduction(rp, t) {
            reuse.insert(t, a);
        }
    }
    Ok(())
}

/// Whether temporary `t` is a reduction's result (a fresh small array per block).
fn s_is_reduction(rp: &crate::opt::RowPlan, t: u32) -> bool {
    rp.steps
        .iter()
        .any(|s| s.kernel.is_reduction() && s.temps.contains(&t))
}
