"""Stage 2, effect sizes: what studies report converted to Hedges' g and its sampling variance."""
