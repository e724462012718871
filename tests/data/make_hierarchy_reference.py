#!/usr/bin/python3
"""Reference outputs of SciPy's hierarchical clustering for tests/hierarchy_test.cc.

Run with the Debian python3 (apt-get install -y python3-scipy python3-numpy):

    /usr/bin/python3 tests/data/make_hierarchy_reference.py

It writes, under tests/data/hierarchy/ (next to this script), for each data set NAME:

  NAME.points            line 1: "n d"; then n lines of d coordinates. The coordinates are
                         float32 values (the C++ side reads them into float), printed with
                         9 significant digits so they read back exactly; SciPy is run on
                         the same float32 values widened to float64.
  NAME.METHOD.linkage    for METHOD in single, complete, average: the n-1 rows of
                         scipy.cluster.hierarchy.linkage(points, METHOD) (Euclidean),
                         "a b distance size" (a, b cluster ids as integers: 0..n-1 points,
                         n+i the cluster of row i; distance with 17 significant digits).
  NAME.METHOD.fcluster   one line per flat clustering of that linkage:
                         "maxclust K l_0 ... l_{n-1}" = fcluster(Z, K, criterion='maxclust')
                         for K in 2, 3, 5 (note: SciPy 1.10 never returns more than n-2
                         maxclust clusters, so for K >= n-1 it does not use the smallest
                         threshold; tiny3d has K = 5 = n), and
                         "distance T l_0 ... l_{n-1}" = fcluster(Z, T, criterion='distance')
                         for two thresholds T halfway between consecutive merge heights
                         (so T is never within rounding of a height).
  VERSION                the numpy and scipy versions that produced the files.

The data are deterministic (numpy RandomState with fixed seeds) and generic: the script
checks that no two pairwise distances and no two merge heights are exactly equal, so the
dendrogram is unique and does not depend on how ties are broken.
"""

import os

import numpy as np
import scipy
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hierarchy")
METHODS = ("single", "complete", "average")


def blobs(rng, n, d, centres, spread, box):
    c = rng.uniform(-box, box, size=(centres, d))
    which = rng.randint(0, centres, size=n)
    return c[which] + rng.normal(0.0, spread, size=(n, d))


def data_sets():
    return {
        "blobs2d": blobs(np.random.RandomState(1), 30, 2, 3, 1.0, 8.0),
        "blobs8d": blobs(np.random.RandomState(2), 200, 8, 5, 1.0, 6.0),
        "uniform16d": np.random.RandomState(3).uniform(0.0, 1.0, size=(120, 16)),
        "line1d": np.concatenate([
            np.random.RandomState(4).normal(0.0, 1.0, size=(25, 1)),
            np.random.RandomState(5).normal(6.0, 2.0, size=(15, 1)),
        ]),
        "tiny3d": np.random.RandomState(6).normal(0.0, 1.0, size=(5, 3)),
    }


def check_generic(name, what, values):
    if np.unique(values).size != values.size:
        raise SystemExit(f"{name}: {what} has exact ties; choose another seed")


def fmt_labels(labels):
    return " ".join(str(int(v)) for v in labels)


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "VERSION"), "w") as f:
        f.write(f"numpy {np.__version__} scipy {scipy.__version__}\n")
    for name, x in data_sets().items():
        x32 = x.astype(np.float32)
        x64 = x32.astype(np.float64)
        n, d = x32.shape
        check_generic(name, "pdist", pdist(x64))
        with open(os.path.join(OUT, f"{name}.points"), "w") as f:
            f.write(f"{n} {d}\n")
            for row in x32:
                f.write(" ".join("%.9g" % v for v in row) + "\n")
        for method in METHODS:
            z = linkage(x64, method=method, metric="euclidean")
            check_generic(name, f"{method} merge heights", z[:, 2])
            with open(os.path.join(OUT, f"{name}.{method}.linkage"), "w") as f:
                for a, b, dist, size in z:
                    f.write(f"{int(a)} {int(b)} {dist:.17g} {int(size)}\n")
            h = np.sort(z[:, 2])
            m = h.size
            with open(os.path.join(OUT, f"{name}.{method}.fcluster"), "w") as f:
                for k in (2, 3, 5):
                    f.write(f"maxclust {k} {fmt_labels(fcluster(z, k, criterion='maxclust'))}\n")
                for pos in sorted({min(m // 2, m - 2), min((9 * m) // 10, m - 2)}):
                    t = 0.5 * (h[pos] + h[pos + 1])
                    labels = fcluster(z, t, criterion="distance")
                    f.write(f"distance {t:.17g} {fmt_labels(labels)}\n")
        print(f"{name}: {n} points in {d}-d")


if __name__ == "__main__":
    main()
