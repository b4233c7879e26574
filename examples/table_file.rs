//! Writes the tables benchmark's Parquet file without Python: `a`, `b` float64 (normal,
//! 10% of `b` null), `k` int64 in 0..1000, Snappy, row groups of 2^20 rows, like
//! `benches/peers/tables.py` writes it with pyarrow (its string column `s` is left out: no
//! query reads it). Usage: `table_file PATH [ROWS]` (default 2e7 rows); then time
//! `fusebox eval 'sum(a*b)' --table PATH`.
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::sync::Arc;

/// xorshift64*: uniform in [0, 1).
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: table_file PATH [ROWS]")?;
    let rows = args
        .next()
        .map(|s| s.parse::<f64>())
        .transpose()?
        .unwrap_or(2e7) as usize;
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float64, true),
        Field::new("b", DataType::Float64, true),
        Field::new("k", DataType::Int64, true),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(&path)?, schema.clone(), Some(props))?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let step = 1 << 22;
    let mut start = 0;
    while start < rows {
        let n = step.min(rows - start);
        let a: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let b: Vec<Option<f64>> = (0..n)
            .map(|_| {
                let v = rng.normal();
                (rng.unit() >= 0.1).then_some(v)
            })
            .collect();
        let k: Vec<i64> = (0..n).map(|_| (rng.unit() * 1000.0) as i64).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(a)),
            Arc::new(Float64Array::from(b)),
            Arc::new(Int64Array::from(k)),
        ];
        w.write(&RecordBatch::try_new(schema.clone(), cols)?)?;
        start += n;
    }
    w.close()?;
    println!("{path}: {rows} rows");
    Ok(())
}
