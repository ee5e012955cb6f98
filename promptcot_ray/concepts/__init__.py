"""Method steps 2-4: seed problems, concept extraction, the concept pool, combinations.

`normalize` turns extracted concept strings into dedupe keys, `pool` builds the
`ConceptPool` (texts, frequencies, embeddings, sparse co-occurrence) and stores it as Arrow
tables, and `sampler` draws concept combinations deterministically from (pool, seed,
index); these three need only numpy, scipy and pyarrow. The other modules run the
`concepts` job on Ray.
"""
