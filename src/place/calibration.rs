//! The calibration store: measured [`DeviceParams`] kept in a per-machine JSON file, keyed by
//! the device (CPU model and thread count; adapter name, backend and driver) and by the
//! fusebox version, so a new driver or a new release measures again.
use super::model::DeviceParams;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Where calibrations are kept: `$FUSEBOX_CALIBRATION` if set, else
/// `$XDG_CACHE_HOME/fusebox/calibration.json`, else `$HOME/.cache/fusebox/calibration.json`
/// (None when neither is set: calibrations then live for the process only).
pub fn cache_path() -> Option<PathBuf> {
    cache_path_from(&|k| std::env::var(k).ok())
}

/// [`cache_path`] with the environment given as a function (testable without touching the
/// process environment).
pub fn cache_path_from(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = set("FUSEBOX_CALIBRATION") {
        return Some(PathBuf::from(p));
    }
    let dir = set("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(dir.join("fusebox").join("calibration.json"))
}

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    /// The fusebox version that measured (another version measures again).
    fusebox: String,
    devices: Vec<DeviceParams>,
}

/// A calibration file and what was read from or added to it.
pub struct CalibrationCache {
    path: Option<PathBuf>,
    /// `None` until the file is read.
    devices: Mutex<Option<Vec<DeviceParams>>>,
}

impl CalibrationCache {
    /// A cache backed by `path` (nothing is read until first use).
    pub fn at(path: Option<PathBuf>) -> CalibrationCache {
        CalibrationCache {
            path,
            devices: Mutex::new(None),
        }
    }

    /// The process-wide cache at [`cache_path`].
    pub fn global() -> &'static CalibrationCache {
        static C: OnceLock<CalibrationCache> = OnceLock::new();
        C.get_or_init(|| CalibrationCache::at(cache_path()))
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The parameters stored under `key`, or `measure()`'s, which are then stored (in memory
    /// and in the file; a file that cannot be written is reported by a `tracing` warning and
    /// the measurement is still used). Concurrent callers wait for one measurement.
    pub fn get_or_measure(
        &self,
        key: &str,
        measure: impl FnOnce() -> Result<DeviceParams>,
    ) -> Result<DeviceParams> {
        let mut guard = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let devices = guard.get_or_insert_with(|| self.read());
        if let Some(p) = devices.iter().find(|d| d.key == key) {
            return Ok(p.clone());
        }
        let mut p = measure()?;
        p.key = key.to_string();
        devices.push(p.clone());
        if let Err(e) = self.write(devices) {
            tracing::warn!(
                "fusebox: cannot write the calibration file {:?}: {e}",
                self.path
            );
        }
        Ok(p)
    }

    /// The GPUs this cache has measured (on this machine, whether or not present now).
    pub fn known_gpus(&self) -> Vec<DeviceParams> {
        let mut guard = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .get_or_insert_with(|| self.read())
            .iter()
            .filter(|d| d.key.starts_with("gpu "))
            .cloned()
            .collect()
    }

    /// The file's devices, if it exists, parses, and was written by this version.
    fn read(&self) -> Vec<DeviceParams> {
        let Some(path) = &self.path else {
            return vec![];
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return vec![];
        };
        match serde_json::from_str::<CacheFile>(&text) {
            Ok(f) if f.fusebox == env!("CARGO_PKG_VERSION") => f.devices,
            Ok(_) => vec![],
            Err(e) => {
                tracing::warn!("fusebox: ignoring unreadable calibration file {path:?}: {e}");
                vec![]
            }
        }
    }

    fn write(&self, devices: &[DeviceParams]) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = CacheFile {
            fusebox: env!("CARGO_PKG_VERSION").to_string(),
            devices: devices.to_vec(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        // Write beside, then rename: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}
