//! Adapters: listing them (Vulkan first), describing their features and limits, and what
//! an adapter can run at all (dtypes, sizes).
use super::device_size;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::Kernel;

/// Refuse dtypes the adapter cannot run, with a message naming the missing feature.
pub(super) fn check_capabilities(info: &AdapterInfo, types: &[DType]) -> Result<()> {
    if let Some(t) = types.iter().find(|t| !gpu_dtype(**t)) {
        return Err(Error::UnsupportedDtype {
            dtype: t.to_string(),
            context: format!(
                "the GPU backend does not run {t} yet (bool, int32, int64, float32 and float64 \
                 only); under Device::Auto such a plan runs on the CPU"
            ),
        });
    }
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

/// Whether the WGSL backend has code for dtype `t` at all (whatever the adapter).
pub(crate) fn gpu_dtype(t: DType) -> bool {
    matches!(
        t,
        DType::Bool | DType::I32 | DType::I64 | DType::F32 | DType::F64
    )
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
    /// Whether the driver compiles with fast-math assumptions, so that every float operation
    /// needs the opaque barriers ([`needs_fast_math_barriers`]).
    pub fast_math_barriers: bool,
}

/// Whether a driver needs the fast-math barriers on every float operation
/// ([`super::wgsl::Barriers::All`]): Mesa's drivers (lavapipe, RADV, ANV, NVK, Turnip, ...)
/// compile naga's SPIR-V, which declares neither `SignedZeroInfNanPreserve` nor
/// `NoContraction`, with fast-math assumptions (measured on lavapipe: `x * 0.0` folded to 0,
/// `(a + b) - b` to `a`). Other drivers (NVIDIA's, AMD's and Intel's own, Metal, DX12) keep
/// IEEE semantics and get the product barrier only. `FUSEBOX_GPU_BARRIERS=all` or
/// `=products` overrides the detection (read when adapters are listed).
pub fn needs_fast_math_barriers(name: &str, driver: &str, driver_info: &str) -> bool {
    match std::env::var("FUSEBOX_GPU_BARRIERS")
        .as_deref()
        .map(str::trim)
    {
        Ok("all") => return true,
        Ok("products") => return false,
        _ => {}
    }
    const MESA: [&str; 10] = [
        "mesa",
        "llvmpipe",
        "lavapipe",
        "radv",
        "nvk",
        "turnip",
        "v3dv",
        "venus",
        "honeykrisp",
        "panvk",
    ];
    let text = format!("{name} {driver} {driver_info}").to_lowercase();
    MESA.iter().any(|m| text.contains(m))
}

/// Features hidden from every adapter by `FUSEBOX_GPU_HIDE=f64,i64,subgroups` (any subset),
/// read when adapters are listed: runs a real adapter as one without them (what a Metal or
/// mobile GPU lacks), for tests and for checking Auto's choices.
fn hidden(feature: &str) -> bool {
    std::env::var("FUSEBOX_GPU_HIDE")
        .is_ok_and(|v| v.split(',').any(|f| f.trim().eq_ignore_ascii_case(feature)))
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
        fast_math_barriers: needs_fast_math_barriers(&info.name, &info.driver, &info.driver_info),
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info),
        f64: f.contains(wgpu::Features::SHADER_F64) && !hidden("f64"),
        i64: f.contains(wgpu::Features::SHADER_INT64) && !hidden("i64"),
        subgroups: f.contains(wgpu::Features::SUBGROUP) && !hidden("subgroups"),
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
            fast_math_barriers: true,
        }
    }

    #[test]
    fn fast_math_barriers_only_on_mesa_drivers() {
        if std::env::var("FUSEBOX_GPU_BARRIERS").is_ok() {
            return; // the override decides
        }
        // What wgpu reports for lavapipe, RADV and ANV (Vulkan), and Mesa under GL.
        let mesa = [
            (
                "llvmpipe (LLVM 15.0.6, 256 bits)",
                "llvmpipe",
                "Mesa 22.3.6 (LLVM 15.0.6)",
            ),
            (
                "AMD Radeon RX 7900 XTX (RADV NAVI31)",
                "radv",
                "Mesa 24.0.5",
            ),
            (
                "Intel(R) Arc(tm) A770 Graphics (DG2)",
                "Intel open-source Mesa driver",
                "Mesa 24.1",
            ),
            ("NVIDIA GeForce RTX 4090 (NVK AD102)", "NVK", "Mesa 24.1.0"),
            (
                "Mesa Intel(R) UHD Graphics 630 (CFL GT2)",
                "",
                "4.6 (Core Profile) Mesa 23.2.1",
            ),
        ];
        for (name, driver, info) in mesa {
            assert!(needs_fast_math_barriers(name, driver, info), "{name}");
        }
        let ieee = [
            ("NVIDIA GeForce RTX 4090", "NVIDIA", "550.54.14"),
            ("NVIDIA H200", "NVIDIA", "570.86.15"),
            (
                "AMD Radeon RX 7900 XTX",
                "AMD proprietary driver",
                "24.10.1",
            ),
            ("Apple M2 Max", "", ""),
            (
                "Intel(R) Arc(TM) A770 Graphics",
                "Intel Corporation",
                "31.0.101.5445",
            ),
        ];
        for (name, driver, info) in ieee {
            assert!(!needs_fast_math_barriers(name, driver, info), "{name}");
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
