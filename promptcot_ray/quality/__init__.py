"""Quality gates: exact dedup, MinHash near-dedup and benchmark decontamination."""
