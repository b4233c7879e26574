//! Sources of record batches: Parquet, Arrow IPC (file and stream), CSV, `.npz` and memory.
//!
//! Opening reads the metadata only (a Parquet footer, an IPC schema, the first rows of a CSV
//! for type inference); [`Source::batches`] streams the rows of the projected columns. Every
//! failure of a reader is [`Error::Table`] with the file and where the reader was; the
//! readers run inside [`guard`], so a reader that panics on malformed bytes gives a typed
//! error too.
use crate::array::DynArray;
use crate::dtype::DType;
use crate::error::{Error, Result};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A stream of record batches.
pub(crate) type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// How to read a CSV file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CsvOptions {
    /// Whether the first row names the columns (default true; otherwise `column_1`, ...).
    pub header: bool,
    /// The field separator (default `,`).
    pub delimiter: u8,
    /// The columns' types; `None` infers them from the first [`CsvOptions::infer_rows`] rows.
    pub schema: Option<SchemaRef>,
    /// Rows read to infer the types (default 1000).
    pub infer_rows: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            delimiter: b',',
            schema: None,
            infer_rows: 1000,
        }
    }
}

impl CsvOptions {
    /// These options with the column types given instead of inferred.
    pub fn with_schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }
    /// These options with or without a header row.
    pub fn with_header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }
    /// These options with another field separator.
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
}

/// Bytes in memory, shared between passes.
#[derive(Clone)]
pub(crate) struct Bytes(Arc<Vec<u8>>);
impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Where a table's rows come from.
pub(crate) enum Source {
    Memory {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    Parquet {
        path: PathBuf,
        schema: SchemaRef,
        rows: usize,
        /// Per column: whether the statistics allow a null (true when they do not say).
        nullable: Vec<bool>,
        /// The row groups' statistics (empty for a nested schema, whose leaf columns are not
        /// the fields).
        groups: Vec<super::prune::GroupStats>,
        /// The footer, decoded once: each chunk reader of [`Source::parquet_chunk`] starts
        /// from it.
        meta: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    },
    IpcFile {
        path: PathBuf,
        schema: SchemaRef,
    },
    IpcStream {
        path: PathBuf,
        schema: SchemaRef,
    },
    Csv {
        path: Option<PathBuf>,
        bytes: Option<Bytes>,
        schema: SchemaRef,
        options: CsvOptions,
    },
}

/// An [`Error::Table`].
pub(crate) fn table_err(
    path: Option<&Path>,
    position: Option<String>,
    message: impl std::fmt::Display,
) -> Error {
    Error::Table {
        path: path.map(Path::to_path_buf),
        position,
        message: message.to_string(),
    }
}

/// Run a reader on outside bytes: its panics (a reader's bug on malformed input) become
/// [`Error::Table`] too.
pub(crate) fn guard<T>(
    path: Option<&Path>,
    position: impl Fn() -> Option<String>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(table_err(
                path,
                position(),
                format!("malformed input (the reader failed: {what})"),
            ))
        }
    }
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::Io {
        path: Some(path.to_path_buf()),
        message: e.to_string(),
    })
}

/// The fusebox dtype an Arrow type computes as (small integers widen losslessly).
pub(crate) fn dtype_of(t: &DataType) -> Option<DType> {
    Some(match t {
        DataType::Boolean => DType::Bool,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => DType::I32,
        DataType::UInt8 | DataType::UInt16 => DType::I32,
        DataType::Int64 | DataType::UInt32 => DType::I64,
        DataType::Float32 => DType::F32,
        DataType::Float64 => DType::F64,
        _ => return None,
    })
}

/// The Arrow type of a fusebox dtype.
pub(crate) fn arrow_type(d: DType) -> DataType {
    match d {
        DType::Bool => DataType::Boolean,
        DType::I8 => DataType::Int8,
        DType::I16 => DataType::Int16,
        DType::I32 => DataType::Int32,
        DType::I64 => DataType::Int64,
        DType::U8 => DataType::UInt8,
        DType::U16 => DataType::UInt16,
        DType::U32 => DataType::UInt32,
        DType::U64 => DataType::UInt64,
        DType::F16 => DataType::Float16,
        DType::F32 => DataType::Float32,
        DType::F64 => DataType::Float64,
    }
}

/// A 1-d array as an Arrow array (copied), with `validity` (`None`: all valid).
pub(crate) fn to_arrow(a: &DynArray, validity: Option<arrow_buffer::NullBuffer>) -> ArrayRef {
    match a {
        DynArray::Bool(x) => {
            let values: arrow_buffer::BooleanBuffer = x.iter().copied().collect();
            Arc::new(BooleanArray::new(values, validity))
        }
        DynArray::I32(x) => Arc::new(Int32Array::new(x.iter().copied().collect(), validity)),
        DynArray::I64(x) => Arc::new(Int64Array::new(x.iter().copied().collect(), validity)),
        DynArray::I8(x) => Arc::new(arrow_array::Int8Array::new(
            x.iter().copied().collect(),
            validity,
        )),
        DynArray::I16(x) => Arc::new(arrow_array::Int16Array::new(
            x.iter().copied().collect(),
            validity,
        )),
        DynArray::U8(x) => Arc::new(arrow_array::UInt8Array::new(
            x.iter().copied().collect(),
            validity,
        )),
        DynArray::U16(x) => Arc::new(arrow_array::UInt16Array::new(
            x.iter().copied().collect(),
            validity,
        )),
        DynArray::U32(x) => Arc::new(arrow_array::UInt32Array::new(
            x.iter().copied().collect(),
            validity,
        )),
        DynArray::U64(x) => Arc::new(arrow_array::UInt64Array::new(
            x.iter().copied().collect(),
            validity,
        )),
        DynArray::F16(x) => Arc::new(arrow_array::Float16Array::new(
            x.iter().copied().collect(),
            validity,
        )),
        DynArray::F32(x) => Arc::new(Float32Array::new(x.iter().copied().collect(), validity)),
        DynArray::F64(x) => Arc::new(Float64Array::new(x.iter().copied().collect(), validity)),
    }
}

impl Source {
    /// In-memory batches of one schema (`schema` for an empty list).
    pub fn memory(batches: Vec<RecordBatch>, schema: Option<SchemaRef>) -> Result<Source> {
        let schema = match (batches.first(), schema) {
            (Some(b), _) => b.schema(),
            (None, Some(s)) => s,
            (None, None) => {
                return Err(Error::Argument {
                    message: "a table needs at least one record batch (for its schema)".into(),
                })
            }
        };
        for (i, b) in batches.iter().enumerate() {
            if b.schema().fields() != schema.fields() {
                return Err(table_err(
                    None,
                    Some(format!("batch {i}")),
                    "record batches of different schemas",
                ));
            }
        }
        Ok(Source::Memory { schema, batches })
    }

    /// Named 1-d arrays of equal length.
    pub fn from_arrays(columns: &[(&str, DynArray)]) -> Result<Source> {
        let mut fields = vec![];
        let mut arrays = vec![];
        for (name, a) in columns {
            if a.ndim() != 1 {
                return Err(Error::Argument {
                    message: format!(
                        "column `{name}` has shape {:?}; table columns are 1-d",
                        a.shape()
                    ),
                });
            }
            if let Some(first) = arrays.first().map(|x: &ArrayRef| x.len()) {
                if a.len() != first {
                    return Err(Error::ShapeMismatch {
                        lhs: vec![first],
                        rhs: vec![a.len()],
                    });
                }
            }
            fields.push(Field::new(*name, arrow_type(a.dtype()), false));
            arrays.push(to_arrow(a, None));
        }
        let schema = Arc::new(Schema::new(fields));
        let batch =
            RecordBatch::try_new(schema.clone(), arrays).map_err(|e| table_err(None, None, e))?;
        Source::memory(vec![batch], Some(schema))
    }

    /// Open `path` by its extension.
    pub fn open(path: &Path) -> Result<Source> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "parquet" | "pq" => Source::parquet(path),
            "arrow" | "feather" | "ipc" => Source::ipc_file(path),
            "arrows" => Source::ipc_stream(path),
            "csv" => Source::csv(path, CsvOptions::default()),
            "npz" => Source::npz(path),
            _ => Err(Error::Argument {
                message: format!(
                    "{}: unknown table format (by extension: .parquet, .arrow, .feather, \
                     .ipc, .arrows, .csv, .npz)",
                    path.display()
                ),
            }),
        }
    }

    pub fn parquet(path: &Path) -> Result<Source> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let file = open_file(path)?;
        guard(
            Some(path),
            || None,
            || {
                let loaded = parquet::arrow::arrow_reader::ArrowReaderMetadata::load(
                    &file,
                    Default::default(),
                )
                .map_err(|e| table_err(Some(path), Some("footer".into()), e))?;
                let builder =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(file, loaded.clone());
                let schema = builder.schema().clone();
                let meta = builder.metadata();
                let rows = meta.file_metadata().num_rows().max(0) as usize;
                // The chunk readers cut the row groups by the footer's row count: a footer
                // whose groups hold another number of rows is corrupt (found by the fuzzer).
                // (Counts are untrusted: summed with overflow checked, none negative.)
                let in_groups: Option<i64> = meta.row_groups().iter().try_fold(0i64, |n, g| {
                    (g.num_rows() >= 0).then(|| n.checked_add(g.num_rows()))?
                });
                if in_groups != Some(meta.file_metadata().num_rows()) {
                    return Err(table_err(
                        Some(path),
                        Some("footer".into()),
                        format!(
                            "the row groups' row counts ({in_groups:?} in all) do not add up to \
                             the footer's {}",
                            meta.file_metadata().num_rows()
                        ),
                    ));
                }
                let flat = builder.parquet_schema().num_columns() == schema.fields().len();
                let nullable = (0..schema.fields().len())
                    .map(|j| {
                        if !flat {
                            return schema.field(j).is_nullable();
                        }
                        meta.row_groups().iter().any(|rg| {
                            rg.column(j)
                                .statistics()
                                .and_then(|s| s.null_count_opt())
                                .is_none_or(|n| n > 0)
                        })
                    })
                    .collect();
                let groups = if flat {
                    super::prune::group_stats(meta, &schema)
                } else {
                    vec![]
                };
                Ok(Source::Parquet {
                    path: path.to_path_buf(),
                    schema,
                    rows,
                    nullable,
                    groups,
                    meta: loaded,
                })
            },
        )
    }

    pub fn ipc_file(path: &Path) -> Result<Source> {
        let file = open_file(path)?;
        guard(
            Some(path),
            || None,
            || {
                let r = arrow_ipc::reader::FileReader::try_new(BufReader::new(file), None)
                    .map_err(|e| table_err(Some(path), Some("footer".into()), e))?;
                Ok(Source::IpcFile {
                    path: path.to_path_buf(),
                    schema: r.schema(),
                })
            },
        )
    }

    pub fn ipc_stream(path: &Path) -> Result<Source> {
        let file = open_file(path)?;
        guard(
            Some(path),
            || None,
            || {
                let r = arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), None)
                    .map_err(|e| table_err(Some(path), Some("schema message".into()), e))?;
                Ok(Source::IpcStream {
                    path: path.to_path_buf(),
                    schema: r.schema(),
                })
            },
        )
    }

    pub fn csv(path: &Path, options: CsvOptions) -> Result<Source> {
        let schema = match &options.schema {
            Some(s) => s.clone(),
            None => infer_csv(Some(path), open_file(path)?, &options)?,
        };
        Ok(Source::Csv {
            path: Some(path.to_path_buf()),
            bytes: None,
            schema,
            options,
        })
    }

    pub fn csv_bytes(bytes: Vec<u8>, options: CsvOptions) -> Result<Source> {
        let bytes = Bytes(Arc::new(bytes));
        let schema = match &options.schema {
            Some(s) => s.clone(),
            None => infer_csv(None, Cursor::new(bytes.clone()), &options)?,
        };
        Ok(Source::Csv {
            path: None,
            bytes: Some(bytes),
            schema,
            options,
        })
    }

    pub fn npz(path: &Path) -> Result<Source> {
        let file = open_file(path)?;
        let arrays = guard(
            Some(path),
            || None,
            || {
                let mut zip = zip::ZipArchive::new(BufReader::new(file))
                    .map_err(|e| table_err(Some(path), None, e))?;
                let mut out = vec![];
                for i in 0..zip.len() {
                    let mut entry = zip
                        .by_index(i)
                        .map_err(|e| table_err(Some(path), Some(format!("entry {i}")), e))?;
                    let name = entry.name().to_string();
                    let mut bytes = vec![];
                    entry
                        .read_to_end(&mut bytes)
                        .map_err(|e| table_err(Some(path), Some(format!("entry `{name}`")), e))?;
                    let a = crate::npy::read_npy_bytes(&bytes).map_err(|e| {
                        table_err(Some(path), Some(format!("entry `{name}`")), e.to_string())
                    })?;
                    let col = name.strip_suffix(".npy").unwrap_or(&name).to_string();
                    out.push((col, a));
                }
                Ok(out)
            },
        )?;
        let named: Vec<(&str, DynArray)> = arrays
            .iter()
            .map(|(n, a)| (n.as_str(), a.clone()))
            .collect();
        Source::from_arrays(&named).map_err(|e| match e {
            Error::Table { .. } => e,
            other => table_err(Some(path), None, other),
        })
    }

    pub fn schema(&self) -> SchemaRef {
        match self {
            Source::Memory { schema, .. }
            | Source::Parquet { schema, .. }
            | Source::IpcFile { schema, .. }
            | Source::IpcStream { schema, .. }
            | Source::Csv { schema, .. } => schema.clone(),
        }
    }

    /// Rows, where known without reading them.
    pub fn rows(&self) -> Option<usize> {
        match self {
            Source::Memory { batches, .. } => Some(batches.iter().map(|b| b.num_rows()).sum()),
            Source::Parquet { rows, .. } => Some(*rows),
            _ => None,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Memory { .. } => None,
            Source::Parquet { path, .. }
            | Source::IpcFile { path, .. }
            | Source::IpcStream { path, .. } => Some(path),
            Source::Csv { path, .. } => path.as_deref(),
        }
    }

    /// Whether column `i` may hold nulls (exact in memory, from the statistics of a Parquet
    /// file, from the schema otherwise).
    pub fn may_be_null(&self, i: usize) -> bool {
        match self {
            Source::Memory { batches, .. } => batches.iter().any(|b| b.column(i).null_count() > 0),
            Source::Parquet { nullable, .. } => nullable[i],
            other => other.schema().field(i).is_nullable(),
        }
    }

    /// The row groups' statistics, where the source has them (a Parquet file).
    pub fn groups(&self) -> Option<&[super::prune::GroupStats]> {
        match self {
            Source::Parquet { groups, .. } if !groups.is_empty() => Some(groups),
            _ => None,
        }
    }

    /// Rows `[c * chunk_rows, (c + 1) * chunk_rows)` of a Parquet source's columns
    /// `projection`, as one batch: only the row groups they lie in are decoded. Readers of
    /// different chunks are independent, so threads decode chunks in parallel.
    pub fn parquet_chunk(
        &self,
        projection: &[usize],
        chunk_rows: usize,
        c: usize,
    ) -> Result<RecordBatch> {
        use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection};
        use parquet::arrow::ProjectionMask;
        let Source::Parquet {
            path, meta, groups, ..
        } = self
        else {
            return Err(Error::Argument {
                message: "chunk readers are for Parquet files".into(),
            });
        };
        let chunks = self.rows().unwrap_or(0).div_ceil(chunk_rows.max(1));
        let only: Vec<bool> = (0..chunks).map(|k| k != c).collect();
        let (read, sel) = super::prune::selection(groups, &only, chunk_rows);
        let file = open_file(path)?;
        let pos = || Some(format!("chunk {c} (rows from {})", c * chunk_rows));
        guard(Some(path), pos, || {
            let b = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
            let mask = ProjectionMask::roots(b.parquet_schema(), projection.iter().copied());
            let schema = Arc::new(
                b.schema()
                    .project(projection)
                    .map_err(|e| table_err(Some(path), pos(), e))?,
            );
            let reader = b
                .with_projection(mask)
                .with_row_groups(read)
                .with_row_selection(RowSelection::from(sel))
                .with_batch_size(chunk_rows)
                .build()
                .map_err(|e| table_err(Some(path), pos(), e))?;
            let parts = reader
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| table_err(Some(path), pos(), e))?;
            match parts.len() {
                1 => Ok(parts.into_iter().next().expect("one batch")),
                _ => arrow_select::concat::concat_batches(&schema, parts.iter())
                    .map_err(|e| table_err(Some(path), pos(), e)),
            }
        })
    }

    /// The rows of columns `projection` (indices into the schema, ascending), in batches of
    /// about `batch_rows` rows where the format lets the reader choose.
    pub fn batches(&self, projection: &[usize], batch_rows: usize) -> Result<Batches> {
        let path = self.path().map(Path::to_path_buf);
        let proj = projection.to_vec();
        match self {
            Source::Memory { batches, .. } => {
                let out: Vec<Result<RecordBatch>> = batches
                    .iter()
                    .map(|b| b.project(&proj).map_err(|e| table_err(None, None, e)))
                    .collect();
                Ok(Box::new(out.into_iter()))
            }
            Source::Parquet { path, .. } => {
                use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
                use parquet::arrow::ProjectionMask;
                let file = open_file(path)?;
                let reader = guard(
                    Some(path),
                    || None,
                    || {
                        let b = ParquetRecordBatchReaderBuilder::try_new(file)
                            .map_err(|e| table_err(Some(path), Some("footer".into()), e))?;
                        let mask = ProjectionMask::roots(b.parquet_schema(), proj.iter().copied());
                        b.with_projection(mask)
                            .with_batch_size(batch_rows)
                            .build()
                            .map_err(|e| table_err(Some(path), None, e))
                    },
                )?;
                Ok(counted(path.clone().into(), reader))
            }
            Source::IpcFile { path, .. } => {
                let file = open_file(path)?;
                let r = guard(
                    Some(path),
                    || None,
                    || {
                        arrow_ipc::reader::FileReader::try_new(BufReader::new(file), Some(proj))
                            .map_err(|e| table_err(Some(path), Some("footer".into()), e))
                    },
                )?;
                Ok(counted(path.clone().into(), r))
            }
            Source::IpcStream { path, .. } => {
                let file = open_file(path)?;
                let r = guard(
                    Some(path),
                    || None,
                    || {
                        arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), Some(proj))
                            .map_err(|e| table_err(Some(path), Some("schema message".into()), e))
                    },
                )?;
                Ok(counted(path.clone().into(), r))
            }
            Source::Csv {
                bytes,
                schema,
                options,
                ..
            } => {
                let builder = arrow_csv::ReaderBuilder::new(schema.clone())
                    .with_header(options.header)
                    .with_delimiter(options.delimiter)
                    .with_batch_size(batch_rows)
                    .with_projection(proj);
                let input: Box<dyn Read + Send> = match (bytes, &path) {
                    (Some(b), _) => Box::new(Cursor::new(b.clone())),
                    (None, Some(p)) => Box::new(BufReader::new(open_file(p)?)),
                    (None, None) => unreachable!("a CSV source has a path or bytes"),
                };
                let r = builder
                    .build(input)
                    .map_err(|e| table_err(path.as_deref(), None, e))?;
                Ok(counted(path, r))
            }
        }
    }
}

/// Infer a CSV's schema from its first rows.
fn infer_csv(path: Option<&Path>, input: impl Read, options: &CsvOptions) -> Result<SchemaRef> {
    guard(
        path,
        || None,
        || {
            let format = arrow_csv::reader::Format::default()
                .with_header(options.header)
                .with_delimiter(options.delimiter);
            let (schema, _) = format
                .infer_schema(input, Some(options.infer_rows))
                .map_err(|e| table_err(path, Some("header and first rows".into()), e))?;
            Ok(Arc::new(schema))
        },
    )
}

/// A reader's batches with typed errors naming the batch and the first row, and panics
/// guarded.
fn counted<I>(path: Option<PathBuf>, reader: I) -> Batches
where
    I: Iterator<Item = std::result::Result<RecordBatch, arrow_schema::ArrowError>> + Send + 'static,
{
    let mut reader = reader;
    let mut batch = 0usize;
    let mut row = 0usize;
    let mut done = false;
    Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let p = path.as_deref();
        let pos = || Some(format!("batch {batch}, row {row}"));
        let next = guard(p, pos, || Ok(reader.next()));
        let item = match next {
            Ok(None) => None,
            Ok(Some(Ok(b))) => {
                batch += 1;
                row += b.num_rows();
                Some(Ok(b))
            }
            Ok(Some(Err(e))) => Some(Err(table_err(p, pos(), e))),
            Err(e) => Some(Err(e)),
        };
        if !matches!(item, Some(Ok(_))) {
            done = true;
        }
        item
    }))
}
