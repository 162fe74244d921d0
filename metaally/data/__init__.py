"""Stage 1, data: the studies CSV — its schema, loading and validation."""
