# The anchor of bench/faiss-rebuild.ts: Debian's python3-faiss building the same IVF index
# from numpy arrays (no database): train on a uniform sample, add every vector. Prints one
# JSON object. Run with /usr/bin/python3 (where Debian's python3-faiss is installed).
#
#   faiss-rebuild.py VECTORS_F32_FILE COUNT DIM FACTORY TRAIN_SIZE SEED
import json
import sys
import time

import faiss
import numpy as np


def main() -> None:
    path, count, dim, factory, train_size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    x = np.fromfile(path, dtype="<f4").reshape(count, dim)
    t0 = time.perf_counter()
    sample = x[np.random.default_rng(seed).choice(count, size=min(train_size, count), replace=False)]
    index = faiss.index_factory(dim, factory)
    index.train(sample)
    t1 = time.perf_counter()
    index.add(x)
    t2 = time.perf_counter()
    assert index.ntotal == count
    print(json.dumps({
        "train_seconds": t1 - t0,
        "add_seconds": t2 - t1,
        "total_seconds": t2 - t0,
        "threads": faiss.omp_get_max_threads(),
        "faiss_version": faiss.__version__,
        "numpy_version": np.__version__,
    }))


main()
