# Reference values for trim-and-fill on data where k0 creeps up over many iterations.
#
#   Rscript tests/reference/trimfill_creep.R     (from the repository root)
#
# writes tests/reference/trimfill_creep.json, read by tests/test_bias.py.  The data are
# simulated here (publication bias: an effect with z = yi/sqrt(vi) <= 1 is published with
# probability 0.4; 600 effects), so that metafor's trimfill needs many trim/refit rounds before k0 stops
# changing: each round refits the REML model to the trimmed data, which is what metaally
# starts from the previous round's tau^2.  metafor 3.8 (trimfill, rma with tight control).
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
num <- function(x) unname(as.numeric(x))

set.seed(20261204)
k_all <- 1200
vi <- runif(k_all, 0.01, 0.1)
yi <- rnorm(k_all, 0.3, sqrt(vi + 0.02))
published <- yi / sqrt(vi) > 1 | runif(k_all) < 0.4
yi <- yi[published][1:600]
vi <- vi[published][1:600]

out <- list(yi = yi, vi = vi, fits = list())
for (cfg in list(c("L0", "REML"), c("R0", "REML"), c("L0", "ML"))) {
  m <- rma(yi, vi, method = cfg[2], control = ctrl)
  # verbose: one printed line per trim-and-refit round
  printed <- capture.output(t <- trimfill(m, estimator = cfg[1], maxiter = 1000,
                                          control = ctrl, verbose = TRUE))
  out$fits[[paste(cfg, collapse = "_")]] <- list(
    estimator = cfg[1], method = cfg[2], k0 = t$k0, side = t$side,
    rounds = length(grep("^Iteration", printed)),
    estimate = num(t$beta), se = num(t$se), tau2 = num(t$tau2))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE),
           "tests/reference/trimfill_creep.json")
