//! Tables: named columns from Parquet, Arrow IPC, CSV, `.npz` or memory, computed with fused
//! kernels (the seed's `Data(df)`).
//!
//! A [`Table`] is a lazy view of a source of Arrow record batches: the source's columns, columns
//! derived by expressions ([`Table::with_column`]), a projection ([`Table::select`]) and row
//! predicates ([`Table::filter`]). [`Table::col`] gives an [`Expr`] bound to a column (a symbol
//! named after it), so expressions over columns mix with scalars and functions like any other.
//! [`Table::compute`] evaluates them:
//!
//! - **Missing values** are Arrow's validity bitmaps, never NaN. Element-wise results are null
//!   where any input is null; reductions skip nulls (the sum of none is 0; mean, min and max of
//!   none are null); [`Table::count`], [`Table::is_valid`], [`Table::is_null`] and
//!   [`Table::fill_null`] exist. The validity of each nullable column reaches the kernel as a
//!   bool input: a reduction reads `where(valid, x, identity)` in the same fused loop as `x`,
//!   and the validity of an element-wise result is the AND of its inputs' bitmaps (Arrow's
//!   bitmap union, on the host) unless a `fill_null` or `where` needs it computed in the kernel.
//! - **Filters** fuse: over `t.filter(a > 0)`, `sum(b)` is one kernel reading `a`, `b` and
//!   their validity, summing `where((a > 0) & valid, b, 0)`; the filtered column never exists.
//!   Element-wise results of a filtered table are compacted with Arrow's filter after the
//!   kernel.
//! - **Streaming**: every evaluation, in memory or from a file, goes through the same loop
//!   ([`stream`]): the source's batches are cut into chunks of [`CHUNK_ROWS`] rows at fixed
//!   row boundaries (whatever batch size the file has), a reader thread decodes the next chunk
//!   while the kernels run on this one, each reduction gives one partial per chunk, and the
//!   partials are combined by the same reduction, in chunk order. So a result has the same bits
//!   for any batch size and thread count, from a file or from memory. Reductions nested in an
//!   expression (`a - mean(a)`) take one pass per level.
//! - **Row groups** of a Parquet file whose statistics prove the filters false are not read
//!   (`a > 5` over a group whose `a` is at most 5); a chunk they cover takes its place in the
//!   partials' order with the reduction's identity, so skipping never changes a bit
//!   ([`Table::skipped_chunks`] counts them).
//! - **Non-numeric columns** (strings, dates, ...) are displayed and passed through by
//!   [`Table::select`] and the writers, never computed: [`Table::col`] of one is
//!   [`Error::UnsupportedDtype`] naming the Arrow type.
//!
//! The kernels run through the [`Session`] (and so through the one executor); this module never
//! touches a backend.
//!
//! ```
//! use fusebox::table::Table;
//!
//! let t = Table::from_csv_bytes(b"a,b\n1,x\n2,y\n3,z\n".to_vec())?;
//! let sum = t.compute(&t.col("a")?.sum())?;
//! assert_eq!(sum.scalar_i64(), Some(6));
//! assert!(t.to_string().contains("b: string"));
//! # Ok::<(), fusebox::Error>(())
//! ```
mod display;
mod explain;
mod nulls;
mod prune;
mod read;
mod stream;
mod write;

pub use explain::{TableExplain, TablePass};
pub use read::CsvOptions;
pub use stream::Column;

use crate::array::DynArray;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::expr::{Expr, ExprKind};
use crate::session::Session;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use read::Source;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Rows per chunk of the streaming loop: the unit of one kernel call, and of the partials that
/// reductions combine. Fixed, so that results do not depend on a file's batch size.
pub const CHUNK_ROWS: usize = 1 << 20;

/// One visible column of a table.
#[derive(Clone)]
struct ColumnDef {
    name: String,
    kind: ColumnKind,
}

#[derive(Clone)]
enum ColumnKind {
    /// Column `index` of the source.
    Source(usize),
    /// Computed from the source's columns.
    Derived(Expr),
}

/// A table of named columns over Parquet, Arrow IPC, CSV, `.npz` or in-memory record batches;
/// see the [module docs](self).
#[derive(Clone)]
pub struct Table {
    source: Arc<Source>,
    columns: Vec<ColumnDef>,
    /// Row predicates, in the order given; each one's reductions see the rows the earlier ones
    /// keep.
    filters: Vec<Expr>,
    session: Session,
    chunk_rows: usize,
    /// Chunks skipped by row-group statistics, over every evaluation of this table and of the
    /// tables derived from it.
    skipped: Arc<AtomicUsize>,
}

impl Table {
    fn from_source(source: Source) -> Table {
        let columns = source
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| ColumnDef {
                name: f.name().clone(),
                kind: ColumnKind::Source(i),
            })
            .collect();
        Table {
            source: Arc::new(source),
            columns,
            filters: vec![],
            session: Session::new(),
            chunk_rows: CHUNK_ROWS,
            skipped: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A table over in-memory record batches (all of one schema).
    pub fn from_batches(batches: Vec<RecordBatch>) -> Result<Table> {
        Ok(Table::from_source(Source::memory(batches, None)?))
    }

    /// A table of named 1-d arrays of equal length (ndarray columns).
    pub fn from_arrays(columns: &[(&str, DynArray)]) -> Result<Table> {
        Ok(Table::from_source(Source::from_arrays(columns)?))
    }

    /// Open a file by its extension: `.parquet`/`.pq`, `.arrow`/`.feather`/`.ipc` (an Arrow IPC
    /// file), `.arrows` (an Arrow IPC stream), `.csv`, `.npz`. Only the metadata is read now;
    /// the rows stream when something is computed.
    pub fn open(path: impl AsRef<Path>) -> Result<Table> {
        Ok(Table::from_source(Source::open(path.as_ref())?))
    }

    /// Open a Parquet file.
    pub fn open_parquet(path: impl AsRef<Path>) -> Result<Table> {
        Ok(Table::from_source(Source::parquet(path.as_ref())?))
    }

    /// Open an Arrow IPC file (Feather v2).
    pub fn open_ipc_file(path: impl AsRef<Path>) -> Result<Table> {
        Ok(Table::from_source(Source::ipc_file(path.as_ref())?))
    }

    /// Open an Arrow IPC stream.
    pub fn open_ipc_stream(path: impl AsRef<Path>) -> Result<Table> {
        Ok(Table::from_source(Source::ipc_stream(path.as_ref())?))
    }

    /// Open a CSV file: a header row, column types inferred from the first rows unless
    /// [`CsvOptions::schema`] gives them.
    pub fn open_csv(path: impl AsRef<Path>, options: CsvOptions) -> Result<Table> {
        Ok(Table::from_source(Source::csv(path.as_ref(), options)?))
    }

    /// CSV text in memory (a header row, inferred types).
    pub fn from_csv_bytes(bytes: Vec<u8>) -> Result<Table> {
        Ok(Table::from_source(Source::csv_bytes(
            bytes,
            CsvOptions::default(),
        )?))
    }

    /// Open a `.npz` archive of equal-length 1-d arrays (NumPy's `savez`, `savez_compressed`);
    /// read into memory.
    pub fn open_npz(path: impl AsRef<Path>) -> Result<Table> {
        Ok(Table::from_source(Source::npz(path.as_ref())?))
    }

    /// The same table computed with `session` (its device and options) instead of a default
    /// one.
    pub fn with_session(mut self, session: &Session) -> Table {
        self.session = session.clone();
        self
    }

    /// The same table streamed in chunks of `rows` rows (default [`CHUNK_ROWS`]). Sums of
    /// floats depend on where chunks end, so results keep their bits only for one chunk size.
    pub fn with_chunk_rows(mut self, rows: usize) -> Table {
        self.chunk_rows = rows.max(1);
        self
    }

    /// How many chunks (of the table's chunk rows) evaluations have skipped so far because the
    /// Parquet row groups' statistics proved the filters false for all their rows: the
    /// counter is shared with the tables derived from this one. Skipping never changes a
    /// result (see the [module docs](self)).
    pub fn skipped_chunks(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The names of the visible columns, in order.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Rows of the source (before filters), where the source knows it without reading the rows
    /// (CSV does not).
    pub fn source_rows(&self) -> Option<usize> {
        self.source.rows()
    }

    /// The Arrow schema of the source.
    pub fn source_schema(&self) -> SchemaRef {
        self.source.schema()
    }

    fn find(&self, name: &str) -> Result<&ColumnDef> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::UnknownName {
                name: name.to_string(),
                known: self.column_names(),
            })
    }

    /// The expression of column `name`: a symbol named after it for a column of the source,
    /// the defining expression for a derived one. A column that does not exist is
    /// [`Error::UnknownName`] listing the columns that do; a column fusebox does not compute
    /// (strings, dates, ...) is [`Error::UnsupportedDtype`] naming its Arrow type.
    pub fn col(&self, name: &str) -> Result<Expr> {
        match &self.find(name)?.kind {
            ColumnKind::Derived(e) => Ok(e.clone()),
            ColumnKind::Source(i) => self.source_symbol(*i),
        }
    }

    /// The symbol of source column `i`, shaped like the source (a CSV's unknown length reads
    /// as 1; kernels see each chunk's real length).
    fn source_symbol(&self, i: usize) -> Result<Expr> {
        let schema = self.source.schema();
        let field = schema.field(i);
        let dtype = computable_dtype(field.name(), field.data_type())?;
        let n = self.source.rows().unwrap_or(1);
        Ok(Expr::symbol(field.name(), dtype, &[n]))
    }

    /// A table with column `name` (replaced if it exists, appended otherwise) computed by
    /// `expr` over this table's columns. Nothing is computed now.
    pub fn with_column(&self, name: &str, expr: &Expr) -> Result<Table> {
        expr.meta()?;
        self.check_refs(expr)?;
        let mut t = self.clone();
        let def = ColumnDef {
            name: name.to_string(),
            kind: ColumnKind::Derived(expr.clone()),
        };
        match t.columns.iter_mut().find(|c| c.name == name) {
            Some(c) => *c = def,
            None => t.columns.push(def),
        }
        Ok(t)
    }

    /// A table of the named columns only, in the order given.
    pub fn select(&self, names: &[&str]) -> Result<Table> {
        let columns = names
            .iter()
            .map(|n| self.find(n).cloned())
            .collect::<Result<Vec<_>>>()?;
        Ok(Table {
            columns,
            ..self.clone()
        })
    }

    /// The rows where `predicate` (a bool expression over the columns) is true; where it is
    /// null the row is dropped (SQL's `WHERE`). Expressions over the result fuse the predicate
    /// into their kernels.
    pub fn filter(&self, predicate: &Expr) -> Result<Table> {
        let m = predicate.meta()?;
        if m.dtype != DType::Bool {
            return Err(Error::DtypeMismatch {
                name: "filter predicate".into(),
                expected: DType::Bool,
                found: m.dtype,
            });
        }
        self.check_refs(predicate)?;
        let mut t = self.clone();
        t.filters.push(predicate.clone());
        Ok(t)
    }

    /// Check that every symbol of `e` is a column of the source (or a marker of this module).
    fn check_refs(&self, e: &Expr) -> Result<()> {
        let schema = self.source.schema();
        let mut bad = None;
        nulls::walk(e, &mut |n| {
            if let ExprKind::Symbol(s) = n.kind() {
                if !nulls::is_marker(s) && schema.index_of(s).is_err() && bad.is_none() {
                    bad = Some(s.clone());
                }
            }
        });
        match bad {
            Some(name) => Err(Error::UnknownName {
                name,
                known: self.column_names(),
            }),
            None => Ok(()),
        }
    }

    /// Whether each element of `x` is present (not null): a bool expression, never null.
    pub fn is_valid(&self, x: &Expr) -> Expr {
        nulls::is_valid(x)
    }

    /// Whether each element of `x` is null: a bool expression, never null.
    pub fn is_null(&self, x: &Expr) -> Expr {
        !nulls::is_valid(x)
    }

    /// `x` with its nulls replaced by `value` (of `value`'s dtype promoted with `x`'s, like
    /// `where`).
    pub fn fill_null(&self, x: &Expr, value: impl Into<Expr>) -> Expr {
        nulls::fill_null(x, value.into())
    }

    /// How many elements of `x` are present (int64), over the rows the filters keep.
    pub fn count(&self, x: &Expr) -> Expr {
        nulls::is_valid(x).sum()
    }

    /// Evaluate an expression over this table's columns: a scalar for a reduction, a column of
    /// the kept rows for an element-wise expression, with its validity.
    pub fn compute(&self, expr: &Expr) -> Result<Column> {
        let mut out = self.compute_many(std::slice::from_ref(expr))?;
        Ok(out.swap_remove(0))
    }

    /// Evaluate several expressions in as few passes over the rows as possible: the
    /// reductions of one nesting level share one pass, and element-wise results one more.
    pub fn compute_many(&self, exprs: &[Expr]) -> Result<Vec<Column>> {
        for e in exprs {
            e.meta()?;
            self.check_refs(e)?;
        }
        stream::compute_many(self, exprs)
    }

    /// The plan [`Table::compute`] would run, without reading a row: per pass over the rows,
    /// the kernels each chunk runs (graph, IR, bytes, device), the source columns read and the
    /// chunks the row groups' statistics skip (see [`TableExplain`]).
    pub fn explain(&self, expr: &Expr) -> Result<TableExplain> {
        self.explain_many(std::slice::from_ref(expr))
    }

    /// The plan of [`Table::compute_many`].
    pub fn explain_many(&self, exprs: &[Expr]) -> Result<TableExplain> {
        for e in exprs {
            e.meta()?;
            self.check_refs(e)?;
        }
        explain::build(self, exprs)
    }

    /// The first `n` kept rows of every visible column, as a record batch (derived columns
    /// computed, other columns passed through).
    pub fn head(&self, n: usize) -> Result<RecordBatch> {
        stream::materialize(self, Some(n), &mut |_| Ok(()))
    }

    /// Every kept row of every visible column, as one record batch in memory.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        stream::materialize(self, None, &mut |_| Ok(()))
    }

    /// Write the table (derived columns computed, filters applied) to `path`, by extension:
    /// `.parquet`, `.arrow`/`.feather`/`.ipc`, `.arrows` (IPC stream), `.csv`. Streams: one
    /// chunk in memory at a time. Validity is kept (CSV writes an empty field).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write::write(self, path.as_ref())
    }
}

/// The fusebox dtype of an Arrow column that kernels compute with, or
/// [`Error::UnsupportedDtype`] naming the Arrow type.
pub(crate) fn computable_dtype(name: &str, t: &DataType) -> Result<DType> {
    match read::dtype_of(t) {
        Some(d) => Ok(d),
        None => Err(Error::UnsupportedDtype {
            dtype: t.to_string(),
            context: format!(
                "column `{name}`: tables compute bool, integer and float columns; others are \
                 displayed and passed through"
            ),
        }),
    }
}
