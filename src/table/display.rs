//! `Display` of a table: the schema, the row count where known, and the first rows, like
//! Blaze's `Data` repr (pandas' layout: a row number, then one right-aligned column per
//! field; nulls show as `null`).
use super::{ColumnKind, Table};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use std::fmt;

/// Rows shown.
const HEAD: usize = 10;

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = match (self.filters.is_empty(), self.source.rows()) {
            (true, Some(n)) => n.to_string(),
            _ => "?".into(),
        };
        writeln!(f, "Table: {rows} rows x {} columns", self.columns.len())?;
        let src = self.source.schema();
        for c in &self.columns {
            let ty = match &c.kind {
                ColumnKind::Source(i) => {
                    let t = src.field(*i).data_type();
                    match super::read::dtype_of(t) {
                        Some(d) => d.to_string(),
                        None => format!("{} (not computed)", arrow_name(t)),
                    }
                }
                ColumnKind::Derived(e) => match e.dtype() {
                    Ok(d) => format!("{d} = {e}"),
                    Err(err) => format!("error: {err}"),
                },
            };
            writeln!(f, "  {}: {ty}", c.name)?;
        }
        let head = match self.head(HEAD + 1) {
            Ok(b) => b,
            Err(e) => return write!(f, "<rows not shown: {e}>"),
        };
        let opts = FormatOptions::new().with_null("null");
        let shown = head.num_rows().min(HEAD);
        let mut cols: Vec<Vec<String>> = vec![(0..shown).map(|i| i.to_string()).collect()];
        let mut names = vec![String::new()];
        for (c, a) in self.columns.iter().zip(head.columns()) {
            let fmt = match ArrayFormatter::try_new(a.as_ref(), &opts) {
                Ok(x) => x,
                Err(e) => return write!(f, "<rows not shown: {e}>"),
            };
            cols.push((0..shown).map(|i| fmt.value(i).to_string()).collect());
            names.push(c.name.clone());
        }
        let widths: Vec<usize> = cols
            .iter()
            .zip(&names)
            .map(|(c, n)| {
                c.iter()
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(n.chars().count())
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &mut dyn Iterator<Item = &String>| {
            let parts: Vec<String> = cells
                .zip(&widths)
                .map(|(s, w)| format!("{s:>w$}"))
                .collect();
            writeln!(f, "{}", parts.join("  ").trim_end())
        };
        line(f, &mut names.iter())?;
        for r in 0..shown {
            line(f, &mut cols.iter().map(|c| &c[r]))?;
        }
        if head.num_rows() > HEAD {
            writeln!(f, "...")?;
        }
        Ok(())
    }
}

/// A short lower-case name of an Arrow type (`string`, `date32`, ...).
fn arrow_name(t: &arrow_schema::DataType) -> String {
    use arrow_schema::DataType::*;
    match t {
        Utf8 | LargeUtf8 | Utf8View => "string".into(),
        other => other.to_string().to_lowercase(),
    }
}
