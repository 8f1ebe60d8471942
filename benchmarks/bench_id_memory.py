"""Id memory (issue #11): numpy StringDType id arrays against the fixed-width unicode arrays the same
ids needed before (computed from the longest id, not allocated).

    python benchmarks/bench_id_memory.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from embedlab import Corpus
from embedlab.trec import read_run


def main() -> None:
    ids = [f"d{i}" for i in range(4999)] + ["x" * 50_000]
    corpus = Corpus(ids, ["t"] * len(ids))
    fixed = len(ids) * max(map(len, ids)) * 4  # 4 bytes per character, every element as wide as the longest
    print(f"corpus of 5,000 ids, one of 50 KB: fixed-width {fixed / 1e9:.2f} GB, "
          f"StringDType slots {corpus.ids.nbytes / 1e3:.0f} KB")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.trec"
        long_id = "y" * 8_000_000
        path.write_text("".join(f"q{i} Q0 d{i} 1 1.0 t\n" for i in range(10_000)) + f"q0 Q0 {long_id} 2 0.5 t\n")
        run = read_run(path)
        fixed = 10_001 * len(long_id) * 4  # the old reader made one fixed-width array of all 10,001 document ids
        print(f"TREC run of {path.stat().st_size / 1e6:.1f} MB ({run.doc_ids.shape[0]:,} queries x "
              f"{run.doc_ids.shape[1]}), one 8 MB id: fixed-width {fixed / 2**30:.0f} GiB, "
              f"StringDType slots {run.doc_ids.nbytes / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
