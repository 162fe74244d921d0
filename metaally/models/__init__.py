"""Stage 3, models: univariate and multilevel random effects, robust inference, pooling."""
