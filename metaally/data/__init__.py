"""Stage 1, data: the studies CSV (schema, loading, validation), the declared vocabularies
beside it, and atomic output files."""
