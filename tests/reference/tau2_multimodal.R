# Reference values for tests/test_tau2.py: REML and ML fits on subsets of dat.bcg whose
# (restricted) likelihood has a local maximum at tau^2 = 0 and a higher one inside, where
# Fisher scoring from the HE start approaches the interior maximum slowly.  Run from the
# repository root:
#   Rscript tests/reference/tau2_multimodal.R
# Writes tests/reference/tau2_multimodal.json.  metafor >= 3.8, metadat, jsonlite.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
# iterate Fisher scoring to convergence (metafor's default stops at a change < 1e-5)
tight <- list(threshold = 1e-12, maxiter = 10000)
subsets <- list(c(1, 3, 5, 13), c(2, 7, 10, 12), c(2, 5, 9, 11, 12))

fit_case <- function(studies, method) {
  fit <- rma(yi, vi, data = dat[studies, ], method = method, control = tight)
  list(tau2 = fit$tau2, estimate = as.numeric(fit$beta), se = fit$se,
       loglik = as.numeric(logLik(fit)))
}

cases <- lapply(subsets, function(s) {
  list(studies = s, REML = fit_case(s, "REML"), ML = fit_case(s, "ML"))
})

# Data sets (random draws) where metafor's answer is not the global maximum of the
# likelihood: Fisher scoring from the HE start (truncated at 0) stops at the boundary
# tau^2 = 0, whose score is negative, though a higher maximum lies inside (REML); or it
# converges to an interior maximum less likely than tau^2 = 0, which metafor then returns
# although the likelihood rises from 0 to a higher maximum near 0.0015 (ML).  metaally
# follows metafor here; the tests pin that choice.
local_case <- function(yi, vi, method) {
  fit <- rma(yi, vi, method = method, control = tight)
  list(method = method, yi = yi, vi = vi, tau2 = fit$tau2, estimate = as.numeric(fit$beta),
       loglik = as.numeric(logLik(fit)))
}
local_maxima <- list(
  local_case(c(0.09316923, 0.57247292, 0.31972887, 0.74044127, 0.0734079, -0.03241059,
               0.01718652, 0.6229896),
             c(0.14368247, 0.21900871, 0.22820179, 0.09082525, 0.01285116, 0.29557057,
               0.0172637, 0.27585342), "REML"),
  local_case(c(-0.03143547, -1.38890007, 0.08291406), c(0.00182126, 0.18106103, 0.00248557),
             "ML")
)

out <- list(
  meta = list(metafor = as.character(packageVersion("metafor")), R = R.version.string,
              data = "dat.bcg, escalc(measure = 'RR')", control = tight),
  yi = as.numeric(dat$yi), vi = as.numeric(dat$vi), cases = cases,
  local_maxima = local_maxima
)
write_json(out, "tests/reference/tau2_multimodal.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
