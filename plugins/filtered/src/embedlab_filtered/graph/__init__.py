"""The ACORN-gamma graph: numba kernels for construction and predicate-filtered search."""
