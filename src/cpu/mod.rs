//! TEMPORARY stand-in for the Cranelift backend (being written on its own branch): the same
//! API, running kernels through the IR interpreter.
use crate::array::{ArgView, DynArray};
use crate::error::Result;
use crate::kir::Kernel;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuCounters {
    pub compilations: u64,
    pub cache_hits: u64,
}
pub struct CpuBackend;
pub struct CpuKernel(Kernel);
impl CpuKernel {
    pub fn kernel(&self) -> &Kernel {
        &self.0
    }
}
impl CpuBackend {
    pub fn new(_threads: usize) -> Result<CpuBackend> {
        Ok(CpuBackend)
    }
    pub fn compile(&self, k: &Kernel) -> Result<Arc<CpuKernel>> {
        k.verify()?;
        Ok(Arc::new(CpuKernel(k.clone())))
    }
    pub fn counters(&self) -> CpuCounters {
        CpuCounters::default()
    }
    pub fn run(
        &self,
        k: &CpuKernel,
        inputs: &[ArgView<'_>],
        out_shape: &[usize],
    ) -> Result<DynArray> {
        crate::interp::run(&k.0, inputs, out_shape)
    }
}
