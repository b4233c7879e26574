"""Fixtures for tests/table*.rs: small tables written by pyarrow, pandas and NumPy, and what
pandas computes over them (the oracle). Run with the project's venv from this folder:

    python3 make_fixtures.py

Nulls are pandas' NA (Arrow validity), never NaN; `b` also holds one real NaN in `nan.*`.
"""
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

rng = np.random.default_rng(14)
n = 1000
a = rng.normal(size=n)
b = rng.normal(size=n) * 10
k = rng.integers(-50, 50, size=n)
i32 = rng.integers(-1000, 1000, size=n).astype(np.int32)
s = np.array([f"s{i % 7}" for i in range(n)])
b_null = rng.random(n) < 0.1
k_null = rng.random(n) < 0.05
table = pa.table(
    {
        "a": pa.array(a),
        "b": pa.array(b, mask=b_null),
        "k": pa.array(k, mask=k_null),
        "i": pa.array(i32),
        "s": pa.array(s),
    }
)
# Several row groups / batches, so the readers' batches do not line up with chunks.
pq.write_table(table, "nulls.parquet", row_group_size=300)
feather.write_feather(table, "nulls.arrow", compression="uncompressed", chunksize=256)
with pa.OSFile("nulls.arrows", "wb") as f:
    with pa.ipc.new_stream(f, table.schema) as w:
        for batch in table.to_batches(max_chunksize=333):
            w.write_batch(batch)
pacsv.write_csv(table, "nulls.csv")
np.savez("plain.npz", a=a, k=k, i=i32)
np.savez_compressed("plain_compressed.npz", a=a, k=k, i=i32)

# The seed's Data(df).
pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_parquet("seed.parquet")

df = table.to_pandas(types_mapper=pd.ArrowDtype)
A, B, K, I = (df[c].astype("Float64" if c in "ab" else "Int64") for c in "abki")


def f(x):
    return None if pd.isna(x) else float(x)


def i(x):
    return None if pd.isna(x) else int(x)


pos = A > 0
expected = {
    "n": n,
    "sum_a": f(A.sum()),
    "sum_b": f(B.sum()),
    "sum_k": i(K.sum()),
    "sum_i": i(I.sum()),
    "mean_b": f(B.mean()),
    "mean_k": f(K.mean()),
    "min_b": f(B.min()),
    "max_b": f(B.max()),
    "min_k": i(K.min()),
    "max_k": i(K.max()),
    "count_b": i(B.count()),
    "count_k": i(K.count()),
    "var_b": f(B.var(ddof=0)),
    "std_b_ddof1": f(B.std(ddof=1)),
    "sum_ab": f((A * B).sum()),
    "mean_b_where_a_pos": f(B[pos].mean()),
    "sum_b_where_a_pos": f(B[pos].sum()),
    "count_where_a_pos": i(pos.sum()),
    "max_k_where_b_gt_5": i(K[B > 5].max()),
    "sum_fill_b_0": f(B.fillna(0).sum()),
    "null_count_a_times_b": i((A * B).isna().sum()),
    "null_count_b_plus_k": i((B + K).isna().sum()),
    "sum_b_minus_mean_b_sq": f(((B - B.mean()) ** 2).sum()),
    "first_rows_a_times_b": [f(x) for x in (A * B)[:20]],
    "first_rows_b_plus_k": [f(x) for x in (B + K)[:20]],
}
with open("expected.json", "w") as out:
    json.dump(expected, out, indent=1, sort_keys=True)
