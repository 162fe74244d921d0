"""Stage 4, diagnostics: small-study bias, influence, subsets, permutation, sensitivity."""
