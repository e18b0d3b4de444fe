# The anchor of bench/faiss-rebuild.ts: Debian's python3-faiss building the same IVF index.
# Prints one JSON object. Run with /usr/bin/python3 (where Debian's python3-faiss is installed).
#
#   faiss-rebuild.py arrays VECTORS_F32_FILE COUNT DIM FACTORY TRAIN_SIZE SEED
#       from numpy arrays already in memory (no database): train on a uniform sample, add
#       every vector. The anchor.
#   faiss-rebuild.py postgres URL TABLE DIM FACTORY TRAIN_SIZE SEED OUT_FILE
#       the same from the Postgres table, done as well as Python does it: one binary COPY
#       (psycopg2, the server's parallel workers allowed as housekeeper allows them)
#       parsed by numpy in place, then train, add, and write_index to OUT_FILE. No
#       verification, no id map, no publish: what housekeeper does besides is extra.
import io
import json
import sys
import time

import faiss
import numpy as np


def build(x: np.ndarray, factory: str, train_size: int, seed: int) -> tuple[faiss.Index, float, float]:
    t0 = time.perf_counter()
    count, dim = x.shape
    sample = x[np.random.default_rng(seed).choice(count, size=min(train_size, count), replace=False)]
    index = faiss.index_factory(dim, factory)
    index.train(sample)
    t1 = time.perf_counter()
    index.add(x)
    t2 = time.perf_counter()
    assert index.ntotal == count
    return index, t1 - t0, t2 - t1


def from_postgres(url: str, table: str, dim: int) -> np.ndarray:
    import os

    import psycopg2

    if url.startswith("env:"):
        url = os.environ[url[4:]]  # keeps the password off the command line
    buf = io.BytesIO()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cur.execute("SET LOCAL parallel_setup_cost = 0")
        cur.execute("SET LOCAL parallel_tuple_cost = 0")
        cur.copy_expert(f"COPY (SELECT id::int8, array_send(embedding) FROM {table}) TO STDOUT (FORMAT binary)", buf)
    raw = buf.getbuffer()
    ext = int.from_bytes(raw[15:19], "big")
    body = raw[19 + ext : len(raw) - 2]  # the header, and the trailer's -1
    # Every tuple has the same layout: 2 fields, a non-NULL int8 and a 1-D float4 array of dim.
    row = np.dtype([
        ("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vec_len", ">i4"),
        ("ndim", ">i4"), ("has_nulls", ">i4"), ("elem_type", ">u4"), ("dim", ">i4"), ("lbound", ">i4"),
        ("v", [("len", ">i4"), ("x", ">f4")], (dim,)),
    ])
    rows = np.frombuffer(body, dtype=row)
    assert (rows["fields"] == 2).all() and (rows["dim"] == dim).all() and (rows["v"]["len"] == 4).all()
    return rows["v"]["x"].astype("<f4")


def main() -> None:
    mode = sys.argv[1]
    if mode == "arrays":
        path, count, dim, factory, train_size, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
        x = np.fromfile(path, dtype="<f4").reshape(count, dim)
        _, train, add = build(x, factory, train_size, seed)
        out = {"train_seconds": train, "add_seconds": add, "total_seconds": train + add}
    elif mode == "postgres":
        url, table, dim, factory, train_size, seed, out_file = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
        t0 = time.perf_counter()
        x = from_postgres(url, table, dim)
        t1 = time.perf_counter()
        index, train, add = build(x, factory, train_size, seed)
        t2 = time.perf_counter()
        faiss.write_index(index, out_file)
        t3 = time.perf_counter()
        out = {"fetch_seconds": t1 - t0, "train_seconds": train, "add_seconds": add, "write_seconds": t3 - t2, "total_seconds": t3 - t0, "rows": int(x.shape[0])}
    else:
        raise SystemExit(f"unknown mode {mode}")
    out.update({"threads": faiss.omp_get_max_threads(), "faiss_version": faiss.__version__, "numpy_version": np.__version__})
    print(json.dumps(out))


main()
