//! `fusebox._core`: fusebox's Python bindings, a thin layer over the crate root's API.
//!
//! It converts at the edge and keeps no logic of its own: NumPy arrays become
//! [`fusebox::ArgView`]s without a copy ([`args`]), numexpr strings become
//! [`fusebox::Expr`]s in one place ([`glue`]), compiled expressions are cached per
//! signature ([`cache`]), kernels run with the GIL released, results hand their buffer to
//! NumPy, and errors become Python exceptions by kind ([`errors`]). [`api`] holds the
//! functions, [`out`] the writes into `out=`, [`split`] the reduction analysis `fusebox.dask`
//! builds its graphs from, [`table`] the core's streamed tables for `fusebox.Data`. The pure-Python package `fusebox` (in `python/fusebox/`) wraps
//! this module.
// The crate docs link to the private modules that hold each part.
#![allow(rustdoc::private_intra_doc_links)]
use pyo3::prelude::*;

mod api;
mod args;
mod cache;
mod errors;
mod glue;
mod out;
mod split;
mod table;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::make_classes(m)?;
    m.add_function(wrap_pyfunction!(api::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(api::ne_evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(api::validate, m)?)?;
    m.add_function(wrap_pyfunction!(api::re_evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(api::explain, m)?)?;
    m.add_function(wrap_pyfunction!(api::compile, m)?)?;
    m.add_function(wrap_pyfunction!(api::_rebuild_compiled, m)?)?;
    m.add_function(wrap_pyfunction!(api::_set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(api::_get_threads, m)?)?;
    m.add_function(wrap_pyfunction!(api::stats, m)?)?;
    m.add_function(wrap_pyfunction!(api::names, m)?)?;
    m.add_function(wrap_pyfunction!(split::analyze, m)?)?;
    m.add_class::<api::PyCompiled>()?;
    m.add_class::<table::PyTable>()?;
    m.add(
        "SUPPORTED_DTYPES",
        args::DTYPES
            .iter()
            .map(|(d, _, _)| d.name())
            .collect::<Vec<_>>(),
    )?;
    m.add("MAX_EXPRESSIONS", cache::MAX_EXPRESSIONS)?;
    Ok(())
}
