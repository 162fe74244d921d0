# Times the metafor / clubSandwich side of `make bench` (benchmarks/run.py writes the
# data, calls this script, and reads its JSON).  Usage:
#   Rscript benchmarks/metafor.R <data-dir> <out.json>
# Each case is kept small enough for R (see benchmarks/cases.py): one timed run each,
# the fitted values saved for the correctness checks.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
out_path <- args[2]
read <- function(name) read.csv(file.path(dir, paste0(name, ".csv")))
elapsed <- function(expr) unname(system.time(expr)[["elapsed"]])
out <- list(metafor = as.character(packageVersion("metafor")))

# rma(method = "REML") on one large data set
d <- read("rma")
t <- elapsed(fit <- rma(d$yi, d$vi, method = "REML"))
out$rma <- list(seconds = t, k = nrow(d), tau2 = fit$tau2, estimate = c(fit$beta), se = fit$se)

# CHE working model + CR2: vcalc -> rma.mv(sparse = TRUE) -> robust(clubSandwich = TRUE)
d <- read("che")
t <- elapsed({
  V <- vcalc(vi, cluster = study, obs = es_id, rho = 0.6, data = d)
  fit <- rma.mv(yi, V, random = ~ 1 | study / es_id, data = d, method = "REML", sparse = TRUE)
  rob <- robust(fit, cluster = d$study, clubSandwich = TRUE)
})
out$che <- list(seconds = t, clusters = length(unique(d$study)), estimate = c(rob$beta),
                se = rob$se, df = rob$dfs, sigma2 = fit$sigma2)

# many small fits: REML + Knapp-Hartung, one rma() call per data set, timed with
# metafor's defaults; the values for the check come from an untimed second loop with
# Fisher scoring iterated to convergence (NA where it still does not converge)
y <- as.matrix(read("refits_y"))
v <- as.matrix(read("refits_v"))
refit <- function(control) {
  est <- se <- tau2 <- rep(NA_real_, nrow(y))
  for (i in seq_len(nrow(y))) {
    f <- try(rma(y[i, ], v[i, ], method = "REML", test = "knha", control = control),
             silent = TRUE)
    if (!inherits(f, "try-error")) {
      est[i] <- c(f$beta); se[i] <- f$se; tau2[i] <- f$tau2
    }
  }
  list(estimate = est, se = se, tau2 = tau2)
}
t <- elapsed(refit(list()))
out$refits <- c(list(seconds = t, n = nrow(y)),
                refit(list(threshold = 1e-12, maxiter = 10000)))

# gosh() with FE: all subsets
d <- read("gosh")
t <- elapsed(g <- gosh(rma(d$yi, d$vi, method = "FE"), progbar = FALSE))
code <- as.vector(g$incl %*% 2^(seq_len(ncol(g$incl)) - 1))
out$gosh <- list(seconds = t, k = nrow(d), n = nrow(g$res), code = code,
                 estimate = g$res$estimate, I2 = g$res$I2)

# permutest(): one moderator, random permutations
d <- read("permutest")
fit <- rma(yi, vi, mods = ~ x, data = d, method = "REML")
iter <- as.integer(readLines(file.path(dir, "permutest_iter.txt")))
t <- elapsed(p <- permutest(fit, iter = iter, progbar = FALSE, seed = 1))
out$permutest <- list(seconds = t, iter = iter, stat = c(fit$zval), qm = fit$QM,
                      pvalue_perm = p$pval, qm_pvalue_perm = p$QMp)

# selmodel(): 3PSM (stepfun, steps 0.025) with metafor's default settings, after rma(ML)
d <- read("selmodel")
t <- elapsed(sel <- selmodel(rma(d$yi, d$vi, method = "ML"), type = "stepfun", steps = 0.025))
out$selmodel <- list(seconds = t, k = nrow(d), estimate = c(sel$beta), se = sel$se,
                     tau2 = sel$tau2, delta = sel$delta[2])

write_json(out, out_path, digits = NA, auto_unbox = TRUE, na = "null")
