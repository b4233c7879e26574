//! Caller-owned outputs: [`Compiled::call_into`] and [`Session::compute_into`] write the
//! result into an array the caller holds (NumPy's and numexpr's `out=`), of any strides.
//!
//! On the CPU the last kernel of the plan writes into the array itself when it is a store of
//! the result's shape (see [`crate::cpu`]'s `run_into`: transposed and reversed outputs make
//! the inputs strided instead; outputs without a unit-stride axis go through a small scratch
//! tile). Otherwise (a reduction's result, a plan on a GPU, an output that overlaps an input
//! other than exactly) the result is computed into a fresh buffer and copied.
//!
//! Aliasing: `out` may be one of the inputs (`x = x * 2 + 1` in place), laid out exactly as
//! the output; that runs in place. Any other overlap between `out` and an input is handled
//! by computing into a fresh buffer first, so the result is always what
//! [`Compiled::call`] returns.
use super::{bind, lookup, names, Compiled, Session};
use crate::array::{ArgView, ArgViewMut};
use crate::error::{Error, Result};
use crate::exec::{self, Buffer};
use crate::expr::Expr;
use crate::options::Device;

impl Compiled {
    /// Call with one array per parameter, in [`Compiled::params`] order, writing the result
    /// into `out` (any strides): `Error::ShapeMismatch` unless `out` has the result's shape,
    /// `Error::DtypeMismatch` unless it has its dtype (no casting). `out` may be one of the
    /// arguments (an in-place update); see the module docs of `session::into` for other
    /// overlaps. On error, `out` may hold part of the result.
    pub fn call_into<'o>(
        &self,
        args: &[ArgView<'_>],
        out: impl Into<ArgViewMut<'o>>,
    ) -> Result<()> {
        let mut out = out.into();
        self.run_with(args, |s, plan, inputs| {
            exec::execute_into(&s.inner.devices, plan, inputs, &mut out)
        })
    }
}

impl Session {
    /// [`Session::compute`], writing the result into `out` (see [`Compiled::call_into`]).
    pub fn compute_into<'o>(&self, expr: &Expr, out: impl Into<ArgViewMut<'o>>) -> Result<()> {
        self.compute_with_into(expr, &[], out)
    }

    /// [`Session::compute_with`], writing the result into `out` (see
    /// [`Compiled::call_into`]).
    pub fn compute_with_into<'o>(
        &self,
        expr: &Expr,
        bindings: &[(&str, ArgView<'_>)],
        out: impl Into<ArgViewMut<'o>>,
    ) -> Result<()> {
        let mut out = out.into();
        if self.device()? == Device::Reference {
            // The oracle computes a fresh result (the same path as `compute_with`), copied in.
            let r = &self.compute_with(expr, bindings)?;
            if r.shape() != out.shape() {
                return Err(Error::ShapeMismatch {
                    lhs: out.shape().to_vec(),
                    rhs: r.shape().to_vec(),
                });
            }
            return out.assign(&r.view());
        }
        let shapes = |name: &str| lookup(bindings, name).map(|v| v.shape().to_vec());
        let plan = self.plan(std::slice::from_ref(expr), &shapes, true)?;
        let args = bind(&plan.inputs, &names(bindings), |name| {
            lookup(bindings, name).map(|v| Buffer::View(v.reborrow()))
        })?;
        exec::execute_into(&self.inner.devices, &plan, &args, &mut out)
    }
}
