//! `fusebox._core.Table`: the core crate's [`fusebox::table::Table`] for `fusebox.Data` over
//! pyarrow Tables and Parquet, CSV and Arrow IPC files.
//!
//! The table streams: its rows are read in chunks while the kernels run, nulls are Arrow's
//! validity bitmaps (element-wise results are null where an input is, reductions skip nulls),
//! and an expression over its columns (numexpr text whose names are column names) runs as
//! fused kernels through the session of the call's device and `optimize` setting. A pyarrow
//! Table arrives as Arrow IPC stream bytes (one copy, made by pyarrow).
use crate::api::parse_device;
use crate::args::to_numpy;
use crate::cache::{self, Ctx};
use crate::errors::IntoPy;
use fusebox::table::Table;
use numpy::PyArray1;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use std::path::PathBuf;

/// A table of named columns (see the module docs).
#[pyclass(name = "Table", module = "fusebox._core", frozen)]
pub struct PyTable {
    table: Table,
}

#[pymethods]
impl PyTable {
    /// Open a file by its extension (`.parquet`/`.pq`, `.arrow`/`.feather`/`.ipc`, `.arrows`,
    /// `.csv`, `.npz`); only the metadata is read now.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<PyTable> {
        let table = py.detach(|| Table::open(&path)).py_err(py)?;
        Ok(PyTable { table })
    }

    /// A table over the record batches of an Arrow IPC stream (`bytes`).
    #[staticmethod]
    fn from_ipc_stream(py: Python<'_>, data: &[u8]) -> PyResult<PyTable> {
        let read = || -> fusebox::Result<Table> {
            let io = |e: arrow_schema::ArrowError| fusebox::Error::Value {
                message: format!("reading the Arrow IPC stream: {e}"),
            };
            let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(data), None)
                .map_err(io)?;
            let batches = reader.collect::<Result<Vec<_>, _>>().map_err(io)?;
            if batches.is_empty() {
                return Err(fusebox::Error::Value {
                    message: "an Arrow IPC stream without record batches".into(),
                });
            }
            Table::from_batches(batches)
        };
        let table = py.detach(read).py_err(py)?;
        Ok(PyTable { table })
    }

    /// The column names.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.table.column_names()
    }

    /// Rows, where known without reading the file (None otherwise).
    #[getter]
    fn rows(&self) -> Option<usize> {
        self.table.source_rows()
    }

    /// The fusebox dtype name of a column, or None for a column that is shown but never
    /// computed (strings, dates); `KeyError` for an unknown name.
    fn dtype(&self, name: &str) -> PyResult<Option<&'static str>> {
        if !self.table.column_names().iter().any(|c| c == name) {
            return Err(PyKeyError::new_err(name.to_string()));
        }
        Ok(self
            .table
            .col(name)
            .and_then(|e| e.dtype())
            .ok()
            .map(|d| d.name()))
    }

    /// Evaluate numexpr text over the columns: `(values, validity)`, `validity` a bool array
    /// (True where present) or None when every value is present. A reduction gives 0-d arrays.
    #[pyo3(signature = (src, optimize=true, device=None))]
    fn compute<'py>(
        &self,
        py: Python<'py>,
        src: &str,
        optimize: bool,
        device: Option<&str>,
    ) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
        let ctx = Ctx {
            device: parse_device(device)?,
            threads: cache::threads(),
            optimize,
        };
        let table = self.table.clone().with_session(&cache::session(ctx));
        let expr = fusebox::parse::parse(src, &|name| table.col(name).ok()).py_err(py)?;
        let col = py.detach(|| table.compute(&expr)).py_err(py)?;
        let shape = col.values().shape().to_vec();
        let validity = col.validity().map(|v| v.to_vec());
        let values = to_numpy(py, col.values().clone())?;
        let validity = match validity {
            Some(v) => Some(
                PyArray1::from_vec(py, v)
                    .into_any()
                    .call_method1("reshape", (shape,))?,
            ),
            None => None,
        };
        Ok((values, validity))
    }

    /// The plan `compute` would run over the columns, without reading a row: per pass over
    /// the rows, the kernels each chunk runs, the columns read and the chunks the row groups'
    /// statistics skip. Text (with estimates) or, with `json`, a dict.
    #[pyo3(signature = (src, optimize=true, device=None, json=false))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        src: &str,
        optimize: bool,
        device: Option<&str>,
        json: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ctx = Ctx {
            device: parse_device(device)?,
            threads: cache::threads(),
            optimize,
        };
        let table = self.table.clone().with_session(&cache::session(ctx));
        let expr = fusebox::parse::parse(src, &|name| table.col(name).ok()).py_err(py)?;
        let e = py.detach(|| table.explain(&expr)).py_err(py)?;
        if json {
            py.import("json")?.getattr("loads")?.call1((e.to_json(),))
        } else {
            Ok(pyo3::types::PyString::new(py, &format!("{e:#}")).into_any())
        }
    }

    /// The schema, the row count and the first rows (as `fusebox.Data` shows them).
    fn __repr__(&self, py: Python<'_>) -> String {
        py.detach(|| self.table.to_string())
    }
}
