"""Tables side by side: fusebox vs polars (streaming), DuckDB and pandas + numexpr.

The file: N rows (default 1e8), columns `a`, `b` float64, `k` int64, `s` string, 10% nulls in
`b`, written by pyarrow (Snappy, row groups of 1M rows). Queries:

1. `sum(a*b)`
2. `mean(b) where a > 0`
3. the derived column `exp(-a*a)*b` written to Parquet

Each tool runs in its own process (so peak RSS is its own), back to back, and the script
prints time and peak RSS per query. Usage (from the repository root, after
`cargo build --release`):

    python3 benches/peers/tables.py --rows 1e8 --file /tmp/t.parquet

Peers missing from the venv are skipped (and said so).
"""
import argparse
import json
import os
import subprocess
import sys
import time

QUERIES = ["sum_ab", "mean_b_where_a_pos", "derive_write"]


def make_file(path, rows):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    step = 1 << 22
    schema = pa.schema(
        [("a", pa.float64()), ("b", pa.float64()), ("k", pa.int64()), ("s", pa.string())]
    )
    with pq.ParquetWriter(path, schema, compression="snappy") as w:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            a = rng.normal(size=n)
            b = rng.normal(size=n)
            mask = rng.random(n) < 0.1
            k = rng.integers(0, 1000, size=n)
            s = pa.array(np.char.add("s", (k % 100).astype(str)))
            w.write_table(
                pa.table(
                    {"a": a, "b": pa.array(b, mask=mask), "k": k, "s": s}, schema=schema
                ),
                row_group_size=1 << 20,
            )


def child(tool, query, path, out):
    """Run one query in this process; print its time."""
    t0 = time.perf_counter()
    if tool == "polars":
        import polars as pl

        lf = pl.scan_parquet(path)
        if query == "sum_ab":
            r = lf.select((pl.col("a") * pl.col("b")).sum()).collect(engine="streaming")
        elif query == "mean_b_where_a_pos":
            r = lf.filter(pl.col("a") > 0).select(pl.col("b").mean()).collect(engine="streaming")
        else:
            lf.select(((-pl.col("a") * pl.col("a")).exp() * pl.col("b")).alias("c")).sink_parquet(out)
            r = None
    elif tool == "duckdb":
        import duckdb

        con = duckdb.connect()
        if query == "sum_ab":
            r = con.execute(f"select sum(a*b) from '{path}'").fetchall()
        elif query == "mean_b_where_a_pos":
            r = con.execute(f"select avg(b) from '{path}' where a > 0").fetchall()
        else:
            con.execute(
                f"copy (select exp(-a*a)*b as c from '{path}') to '{out}' (format parquet)"
            )
            r = None
    elif tool == "pandas":
        import numexpr as ne
        import pandas as pd

        df = pd.read_parquet(path, columns=["a", "b"])
        a = df["a"].to_numpy()
        b = df["b"]
        if query == "sum_ab":
            r = (df["a"] * b).sum()
        elif query == "mean_b_where_a_pos":
            r = b[df["a"] > 0].mean()
        else:
            bv = b.to_numpy(dtype="float64", na_value=float("nan"))
            c = ne.evaluate("exp(-a*a)*bv")
            pd.DataFrame({"c": pd.array(c)}).to_parquet(out)
            r = None
    else:
        raise SystemExit(f"unknown tool {tool}")
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "result": str(r)}))


def fusebox_cmd(binary, query, path, out):
    if query == "sum_ab":
        return [binary, "eval", "sum(a*b)", "--table", path]
    if query == "mean_b_where_a_pos":
        return [binary, "eval", "mean(b)", "--table", path, "--filter", "a > 0"]
    return [binary, "eval", "exp(-a*a)*b", "--table", path, "-o", out]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=float, default=1e8)
    ap.add_argument("--file", default="/tmp/fusebox_tables.parquet")
    ap.add_argument("--binary", default="target/release/fusebox")
    ap.add_argument("--tools", default="fusebox,polars,duckdb,pandas")
    ap.add_argument("--child", nargs=4, metavar=("TOOL", "QUERY", "PATH", "OUT"))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = int(args.rows)
    if not os.path.exists(args.file):
        make_file(args.file, rows)
    size = os.path.getsize(args.file) / 1e9
    print(f"file: {args.file}, {rows} rows, {size:.2f} GB")
    for query in QUERIES:
        for tool in args.tools.split(","):
            out = f"/tmp/fusebox_tables_out_{tool}.parquet"
            if tool == "fusebox":
                cmd = fusebox_cmd(args.binary, query, args.file, out)
            else:
                try:
                    __import__({"pandas": "numexpr"}.get(tool, tool))
                except ImportError:
                    print(f"{query:20s} {tool:8s} skipped (not installed)")
                    continue
                cmd = [sys.executable, __file__, "--child", tool, query, args.file, out]
            # `/usr/bin/time -v` gives each child's own peak RSS.
            r = subprocess.run(
                ["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True
            )
            if r.returncode != 0:
                print(f"{query:20s} {tool:8s} failed: {r.stderr.strip()[-300:]}")
                continue
            wall, kb = r.stderr.strip().splitlines()[-1].split()
            print(f"{query:20s} {tool:8s} {float(wall):8.2f} s  peak RSS {int(kb) / 1024:8.0f} MB")


if __name__ == "__main__":
    main()
