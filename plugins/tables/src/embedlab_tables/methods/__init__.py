"""The benchmark's embedding-table methods (one module per family)."""
