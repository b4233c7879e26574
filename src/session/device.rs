//! Data that stays on a GPU between expressions: [`DeviceArray`], uploaded once, fed to later
//! expressions without a hidden re-upload, brought back on request.
use super::{bind, check_declared, lookup, names, Session};
use crate::array::{ArgView, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::{self, Buffer, Residency};
use crate::expr::Expr;
use crate::gpu::GpuArray;
use crate::options::Device;
use std::sync::Arc;

/// An array held on a GPU session's device. It feeds later expressions (bound to a symbol in
/// [`Session::compute_on_device`]) without being uploaded again; [`Session::to_host`] brings it
/// back. Cheap to clone (shared).
#[derive(Clone)]
pub struct DeviceArray {
    array: Arc<GpuArray>,
}

impl DeviceArray {
    /// The element type.
    pub fn dtype(&self) -> DType {
        self.array.dtype()
    }
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }
}

impl Session {
    /// The adapter of a GPU session, or an error naming what is needed.
    fn gpu_index(&self, what: &str) -> Result<usize> {
        match self.inner.options.device {
            Device::Gpu(n) => Ok(n),
            d => Err(Error::Device {
                message: format!("{what} needs a session pinned to a GPU (device is {d})"),
            }),
        }
    }

    /// Upload an array to this session's GPU, once.
    pub fn to_device(&self, a: &ArgView<'_>) -> Result<DeviceArray> {
        let gpu = self.inner.devices.gpu(self.gpu_index("to_device")?)?;
        Ok(DeviceArray {
            array: Arc::new(gpu.upload(a)?),
        })
    }

    /// Copy a device array back to the host.
    pub fn to_host(&self, d: &DeviceArray) -> Result<DynArray> {
        let gpu = self.inner.devices.gpu(self.gpu_index("to_host")?)?;
        gpu.download(&d.array)
    }

    /// Evaluate `expr` on the GPU with its symbols bound to device arrays. Temporaries and the
    /// result stay on the device; only data bound inside the expression itself is uploaded (once
    /// per call). Arrays must fit one storage binding (host `compute` streams larger ones).
    pub fn compute_on_device(
        &self,
        expr: &Expr,
        bindings: &[(&str, &DeviceArray)],
    ) -> Result<DeviceArray> {
        let gpu = self
            .inner
            .devices
            .gpu(self.gpu_index("compute_on_device")?)?;
        check_declared(std::slice::from_ref(expr), |name| {
            lookup(bindings, name).map(|v| v.shape())
        })?;
        let shapes = |name: &str| lookup(bindings, name).map(|v| v.shape().to_vec());
        let plan = self.plan(std::slice::from_ref(expr), &shapes, true)?;
        let args = bind(&plan.inputs, &names(bindings), |name| {
            lookup(bindings, name).map(|d| Buffer::Gpu(d.array.clone()))
        })?;
        let mut results = exec::execute(&self.inner.devices, &plan, &args, Residency::Device)?;
        let array = match results.swap_remove(0) {
            Buffer::Gpu(g) => g,
            Buffer::Host(a) => Arc::new(gpu.upload(&a.view())?),
            Buffer::View(v) => Arc::new(gpu.upload(&v)?),
        };
        Ok(DeviceArray { array })
    }
}
