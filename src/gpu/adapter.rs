//! Adapters: listing them (Vulkan first), describing their features and limits, and what
//! an adapter can run at all (dtypes, sizes).
use super::device_size;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::Kernel;

/// Refuse dtypes the adapter cannot run, with a message naming the missing feature.
pub(super) fn check_capabilities(info: &AdapterInfo, types: &[DType]) -> Result<()> {
    if !(info.f64 && info.i64) && types.contains(&DType::F64) {
        return Err(Error::UnsupportedDtype {
            dtype: DType::F64.to_string(),
            context: format!(
                "float64 on the GPU needs SHADER_F64 and SHADER_INT64 (the float64 math expansions use 64-bit bit access), which {} ({}) lacks",
                info.name, info.backend
            ),
        });
    }
    if !info.i64 && types.contains(&DType::I64) {
        return Err(Error::UnsupportedDtype {
            dtype: DType::I64.to_string(),
            context: format!(
                "int64 on the GPU needs SHADER_INT64, which {} ({}) lacks",
                info.name, info.backend
            ),
        });
    }
    Ok(())
}

/// One adapter as listed by [`adapters`].
#[derive(Debug, Clone)]
pub struct AdapterInfo {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// Driver name and version (keys the cost model's calibration).
    pub driver: String,
    pub f64: bool,
    pub i64: bool,
    /// `Features::SUBGROUP` (the reductions' first tree levels use subgroup shuffles).
    pub subgroups: bool,
    pub max_binding_size: u64,
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Adapters, Vulkan first. GL only when nothing else exists (it has no f64, and prints errors
/// on headless machines). The instance is returned too: adapters must not outlive it.
pub(super) fn sorted_adapters() -> (wgpu::Instance, Vec<wgpu::Adapter>) {
    let primary = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let mut inst = instance(primary);
    let mut list = pollster::block_on(inst.enumerate_adapters(primary));
    if list.is_empty() {
        inst = instance(wgpu::Backends::GL);
        list = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::GL));
    }
    list.sort_by_key(|a| match a.get_info().backend {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal | wgpu::Backend::Dx12 => 1,
        _ => 2,
    });
    (inst, list)
}

pub(super) fn describe(index: usize, a: &wgpu::Adapter) -> AdapterInfo {
    let info = a.get_info();
    let f = a.features();
    let l = a.limits();
    AdapterInfo {
        index,
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info),
        f64: f.contains(wgpu::Features::SHADER_F64),
        i64: f.contains(wgpu::Features::SHADER_INT64),
        subgroups: f.contains(wgpu::Features::SUBGROUP),
        max_binding_size: l.max_storage_buffer_binding_size.min(l.max_buffer_size),
    }
}

/// All adapters (Vulkan first), for `fusebox devices`. Never panics; empty when none.
pub fn adapters() -> Vec<AdapterInfo> {
    std::panic::catch_unwind(|| {
        let (_inst, list) = sorted_adapters();
        list.iter()
            .enumerate()
            .map(|(i, a)| describe(i, a))
            .collect()
    })
    .unwrap_or_default()
}

/// Whether adapter `info` can run kernel `k` at all (its dtypes; 32-bit indexing of `n`
/// elements). The cost model asks this before it counts the GPU as a candidate; see also
/// [`fits_axis_reduction`].
pub fn supports(info: &AdapterInfo, k: &Kernel, n: usize) -> bool {
    let mut types: Vec<DType> = k.inputs.clone();
    types.extend(k.insts.iter().map(|d| d.ty));
    if k.is_reduction() && !k.output_dtype().is_float() {
        types.push(DType::I64);
    }
    check_capabilities(info, &types).is_ok() && (n as u64) < u32::MAX as u64
}

/// Whether a reduction along some (not all) axes can read its inputs: only full reductions
/// stream inputs larger than one storage binding.
pub fn fits_axis_reduction(info: &AdapterInfo, input_lens: &[(DType, usize)]) -> bool {
    input_lens
        .iter()
        .all(|(t, n)| (device_size(*t) as u64).saturating_mul(*n as u64) <= info.max_binding_size)
}

#[cfg(test)]
mod capability_tests {
    use super::*;

    fn adapter(f64: bool, i64: bool) -> AdapterInfo {
        AdapterInfo {
            index: 0,
            name: "test adapter".into(),
            backend: "Gl".into(),
            device_type: "Cpu".into(),
            driver: String::new(),
            f64,
            i64,
            subgroups: false,
            max_binding_size: 1 << 27,
        }
    }

    #[test]
    fn dtypes_the_adapter_lacks_are_refused_with_the_missing_feature() {
        let none = adapter(false, false);
        let e = check_capabilities(&none, &[DType::F32, DType::F64]).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedDtype { dtype, context } if dtype == "float64" && context.contains("SHADER_F64")),
            "{e}"
        );
        let e = check_capabilities(&none, &[DType::I64]).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedDtype { dtype, context } if dtype == "int64" && context.contains("SHADER_INT64")),
            "{e}"
        );
        assert!(check_capabilities(&none, &[DType::F32, DType::I32, DType::Bool]).is_ok());
        // f64 needs both features (the math expansions use 64-bit integer bit access).
        assert!(check_capabilities(&adapter(true, false), &[DType::F64]).is_err());
        assert!(check_capabilities(&adapter(true, true), &[DType::F64, DType::I64]).is_ok());
    }
}
