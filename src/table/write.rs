//! Writing a table out, chunk by chunk: Parquet, Arrow IPC (file or stream), CSV. Validity is
//! kept (a CSV null is an empty field). One chunk of rows is in memory at a time.
use super::read::table_err;
use super::stream::{each_batch, output_schema};
use super::Table;
use crate::error::{Error, Result};
use arrow_array::RecordBatch;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// [`Table::write`].
pub(crate) fn write(t: &Table, path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let schema = output_schema(t)?;
    let err = |e: &dyn std::fmt::Display| table_err(Some(path), None, e);
    let create = || {
        File::create(path)
            .map(BufWriter::new)
            .map_err(|e| Error::Io {
                path: Some(path.to_path_buf()),
                message: e.to_string(),
            })
    };
    match ext.as_str() {
        "parquet" | "pq" => {
            // Snappy, like pyarrow's and DuckDB's default.
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .build();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(create()?, schema.clone(), Some(props))
                    .map_err(|e| err(&e))?;
            each_batch(t, None, &schema, &mut |b: RecordBatch| {
                w.write(&b).map_err(|e| err(&e))
            })?;
            w.close().map_err(|e| err(&e))?;
        }
        "arrow" | "feather" | "ipc" => {
            let mut w =
                arrow_ipc::writer::FileWriter::try_new(create()?, &schema).map_err(|e| err(&e))?;
            each_batch(t, None, &schema, &mut |b| w.write(&b).map_err(|e| err(&e)))?;
            w.finish().map_err(|e| err(&e))?;
        }
        "arrows" => {
            let mut w = arrow_ipc::writer::StreamWriter::try_new(create()?, &schema)
                .map_err(|e| err(&e))?;
            each_batch(t, None, &schema, &mut |b| w.write(&b).map_err(|e| err(&e)))?;
            w.finish().map_err(|e| err(&e))?;
        }
        "csv" => {
            let mut w = arrow_csv::Writer::new(create()?);
            let mut any = false;
            each_batch(t, None, &schema, &mut |b| {
                any = true;
                w.write(&b).map_err(|e| err(&e))
            })?;
            if !any {
                w.write(&RecordBatch::new_empty(schema.clone()))
                    .map_err(|e| err(&e))?;
            }
        }
        _ => {
            return Err(Error::Argument {
                message: format!(
                    "{}: unknown output format (by extension: .parquet, .arrow, .feather, .ipc, \
                     .arrows, .csv; a single column goes to .npy with Column::write_npy)",
                    path.display()
                ),
            })
        }
    }
    Ok(())
}
