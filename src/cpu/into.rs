//! Store kernels writing into a caller's array ([`CpuBackend::run_into`]) of any strides.
//!
//! The compiled function writes each inner run to contiguous memory (see `codegen`). To reach
//! that as often as the output allows, the iteration space is rearranged for the output:
//! - axes along which the output steps backwards are flipped, for every operand at once (a
//!   store is element-wise, so the order of elements does not matter);
//! - axes are ordered by the output's stride, largest first, so its unit-stride axis (if any)
//!   is innermost, then coalesced with the output counted as one more operand: a transposed
//!   output makes the inputs strided instead;
//! - where the output's innermost step is still not its element size (every other element,
//!   say), runs of at most [`TILE`] elements go to a scratch tile on the stack, then out to
//!   their strided places.
//!
//! Aliasing: [`alias`] tells a caller whether an input overlaps the output. An input laid out
//! exactly as the output (same address, same byte steps, same element size) is safe: every
//! element is read before it is written at the same place, by the same run. Any other overlap
//! is refused here ([`crate::Error::Argument`]); the executor then computes into a fresh buffer
//! and copies.
use super::{
    broadcast_byte_strides, flat_inputs, threads, CpuBackend, CpuKernel, Inline, KernelFn, Plan,
    SendConstPtr, Walker,
};
use crate::array::{byte_range, checked_len, ArgView, ArgViewMut};
use crate::error::{Error, Result};

/// Elements per run on the scratch-tile path (a tile of at most 8 KiB on the stack).
const TILE: usize = 1024;

/// How the inputs of a store relate to its output's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alias {
    /// No input overlaps the output.
    None,
    /// Inputs overlapping the output are laid out exactly as it is (in-place update).
    Exact,
    /// An input overlaps the output some other way.
    Partial,
}

/// How `inputs` (broadcast to `out`'s shape) overlap `out`.
pub(crate) fn alias(inputs: &[ArgView<'_>], out: &ArgViewMut<'_>) -> Alias {
    let (olo, ohi) = out.byte_range();
    if olo == ohi {
        return Alias::None;
    }
    let size = out.dtype().size() as isize;
    let out_strides: Inline<isize> = out.strides().iter().map(|s| s * size).collect();
    let mut found = Alias::None;
    for a in inputs {
        let (lo, hi) = byte_range(a.as_ptr(), a.shape(), a.strides(), a.dtype().size());
        if lo >= ohi || olo >= hi {
            continue;
        }
        let same = a.dtype().size() as isize == size
            && a.as_ptr() == out.view().as_ptr()
            && a.shape().len() <= out.shape().len()
            && broadcast_byte_strides(a, out.shape())
                .iter()
                .zip(&out_strides)
                .zip(out.shape())
                .all(|((s, o), &n)| n <= 1 || s == o);
        if !same {
            return Alias::Partial;
        }
        found = Alias::Exact;
    }
    found
}

impl CpuBackend {
    /// Run store kernel `k` (one output) over the iteration space `shape`, writing into
    /// `out` (of that shape and the output's dtype, any strides). An input may alias `out`
    /// only exactly (see [`alias`]).
    pub fn run_into(
        &self,
        k: &CpuKernel,
        inputs: &[ArgView<'_>],
        shape: &[usize],
        out: &mut ArgViewMut<'_>,
    ) -> Result<()> {
        let kernel = &k.kernel;
        kernel.check_args(inputs, shape)?;
        if kernel.is_reduction() || kernel.outputs.len() != 1 {
            return Err(Error::InvalidKernel {
                message: "run_into takes a store kernel with one output".into(),
            });
        }
        let t = kernel.dtype_of(kernel.outputs[0]);
        if out.dtype() != t {
            return Err(Error::DtypeMismatch {
                name: "out".into(),
                expected: t,
                found: out.dtype(),
            });
        }
        if out.shape() != shape {
            return Err(Error::ShapeMismatch {
                lhs: out.shape().to_vec(),
                rhs: shape.to_vec(),
            });
        }
        if out
            .shape()
            .iter()
            .zip(out.strides())
            .any(|(&n, &s)| n > 1 && s == 0)
        {
            return Err(Error::Argument {
                message: "an output with a zero stride writes one element several times".into(),
            });
        }
        if alias(inputs, out) == Alias::Partial {
            return Err(Error::Argument {
                message: "the output overlaps an input laid out differently".into(),
            });
        }
        let size = t.size();
        let n = checked_len(shape, size)?;
        if n == 0 {
            return Ok(());
        }
        // SAFETY: compiled from `kernel`, whose inputs have the dtypes checked above, with the
        // signature `KernelFn` (see `codegen`).
        let f: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(k.code.code) };
        let choice = self.choose(k, n);
        if choice.0 == threads::Choice::Serial
            && out.is_standard_layout()
            && Self::into_flat(f, inputs, shape, n, out.as_mut_ptr())
        {
            self.count_run(false);
            return Ok(());
        }
        let plan = Self::out_plan(inputs, shape, out);
        let o = inputs.len();
        let out_inner = plan.inner[o];
        let fill = |lo: usize, hi: usize| {
            let mut w = Walker::new(&plan, lo, hi);
            if out_inner == size as isize {
                while let Some((_, len)) = w.next_run(usize::MAX) {
                    let mut outs = [w.ptrs[o] as *mut u8];
                    // SAFETY: the walker's pointers address `len` elements of each input at
                    // its inner stride and `len` contiguous elements of the output (the plan
                    // was made from the output's own shape and strides).
                    unsafe {
                        f(
                            w.ptrs.as_ptr(),
                            plan.inner.as_ptr(),
                            outs.as_mut_ptr() as *mut u8,
                            len,
                            0,
                        )
                    };
                }
            } else {
                let mut tile = [0u64; TILE];
                while let Some((_, len)) = w.next_run(TILE) {
                    let mut outs = [tile.as_mut_ptr() as *mut u8];
                    // SAFETY: as above for the inputs; the tile holds `TILE >= len` elements
                    // of at most 8 bytes.
                    unsafe {
                        f(
                            w.ptrs.as_ptr(),
                            plan.inner.as_ptr(),
                            outs.as_mut_ptr() as *mut u8,
                            len,
                            0,
                        )
                    };
                    let dst = w.ptrs[o] as *mut u8;
                    let src = tile.as_ptr() as *const u8;
                    for i in 0..len {
                        // SAFETY: element `i` of the run lies inside the output at
                        // `out_inner` bytes per step (the plan's strides), and the tile's
                        // element `i` was written above.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                src.add(i * size),
                                dst.wrapping_offset(i as isize * out_inner),
                                size,
                            )
                        };
                    }
                }
            }
        };
        self.fill_all(k, n, choice, fill);
        Ok(())
    }

    /// The one-call path of [`CpuBackend::run_into`] for a C-contiguous output whose inputs
    /// are C-contiguous of the same shape or single elements: `false` (nothing run) otherwise.
    fn into_flat(
        f: KernelFn,
        inputs: &[ArgView<'_>],
        shape: &[usize],
        n: usize,
        out: *mut u8,
    ) -> bool {
        let Some((ptrs, inner)) = flat_inputs(inputs, shape) else {
            return false;
        };
        let mut outs = [out];
        // SAFETY: input j is `n` elements in order at `inner[j]` bytes apart (or one element
        // read with stride 0), of the checked dtype; the output is `n` contiguous elements.
        unsafe {
            f(
                ptrs.as_ptr(),
                inner.as_ptr(),
                outs.as_mut_ptr() as *mut u8,
                n,
                0,
            )
        };
        true
    }

    /// The iteration plan of a store into `out`: inputs then the output as operands, axes
    /// flipped where the output steps backwards and ordered by the output's stride (largest
    /// first), then coalesced.
    fn out_plan(inputs: &[ArgView<'_>], shape: &[usize], out: &mut ArgViewMut<'_>) -> Plan {
        let size = out.dtype().size() as isize;
        let mut strides: Inline<Inline<isize>> = inputs
            .iter()
            .map(|a| broadcast_byte_strides(a, shape))
            .collect();
        strides.push(out.strides().iter().map(|s| s * size).collect());
        let mut bases: Inline<*const u8> = inputs.iter().map(|a| a.as_ptr()).collect();
        bases.push(out.as_mut_ptr() as *const u8);
        let o = inputs.len();
        for d in 0..shape.len() {
            if strides[o][d] < 0 && shape[d] > 1 {
                for (st, b) in strides.iter_mut().zip(bases.iter_mut()) {
                    *b = b.wrapping_offset((shape[d] as isize - 1) * st[d]);
                    st[d] = -st[d];
                }
            }
        }
        let mut perm: Inline<usize> = (0..shape.len()).collect();
        perm.sort_by_key(|&d| std::cmp::Reverse(strides[o][d]));
        let pshape: Inline<usize> = perm.iter().map(|&d| shape[d]).collect();
        let pstrides = strides
            .iter()
            .map(|st| perm.iter().map(|&d| st[d]).collect())
            .collect();
        // The moved bases address elements of their arrays (the flipped axis's last element).
        let bases = bases.iter().map(|&b| SendConstPtr(b)).collect();
        Plan::from_parts(&pshape, pstrides, bases)
    }
}
