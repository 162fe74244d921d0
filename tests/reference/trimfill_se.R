# Reference values for trim-and-fill where the SE of k0 does not exist.
#
#   Rscript tests/reference/trimfill_se.R     (from the repository root)
#
# writes tests/reference/trimfill_se.json, read by tests/test_bias.py.  Seven effects (drawn
# once: yi ~ N(0, 1), vi ~ U(0.05, 1), numpy seed 783) on which the L0 statistic lies far
# below 0, so that Duval & Tweedie's variance of it is negative: metafor's trimfill reports
# k0 = 0 with se.k0 NaN ("NaNs produced").  metafor 3.8.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
yi <- c(-0.10369879784808336, 3.5853193288001526, -0.000661114619909276, -0.8598819421928943,
        0.1075422110250963, -0.3894173659873092, 0.27491836044519846)
vi <- c(0.8027828818578054, 0.7456317520746059, 0.07662715048699181, 0.5492417819421347,
        0.5068177941874935, 0.7646827232060712, 0.5999669877728797)
ctrl <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
t <- suppressWarnings(trimfill(rma(yi, vi, control = ctrl), control = ctrl))
out <- list(yi = yi, vi = vi, k0 = t$k0, se_k0_is_nan = is.nan(t$se.k0), side = t$side,
            estimate = unname(as.numeric(t$beta)))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE), "tests/reference/trimfill_se.json")
