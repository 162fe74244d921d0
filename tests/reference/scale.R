# Reference values for metaally's GOSH and permutation tests (tests/test_gosh.py,
# tests/test_permutation.py).  Run from the repository root:
#   Rscript tests/reference/scale.R
# Writes tests/reference/scale.json.  metafor >= 3.8, metadat, jsonlite.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
yi <- as.numeric(dat$yi)
vi <- as.numeric(dat$vi)
random_alloc <- as.numeric(dat$alloc == "random")
# metafor stops Fisher scoring once tau^2 changes by < 1e-5; iterate to convergence
# instead, so the fixtures hold the root itself (metaally iterates to 1e-12)
tight <- list(threshold = 1e-12, maxiter = 10000)

# ---- GOSH: all 2^13 - 1 = 8191 subsets of dat.bcg ------------------------------
# Summary statistics of every column over the fitted subsets, plus a spread of individual subsets
# (identified by the 1-based study numbers they include).
gosh_case <- function(method) {
  fit <- rma(yi, vi, method = method, control = tight)
  g <- gosh(fit, progbar = FALSE)
  res <- g$res
  cols <- c("k", "QE", "I2", "H2", "tau2", "estimate")
  summ <- lapply(cols, function(cl) {
    x <- res[[cl]][g$fit]
    list(mean = mean(x), sd = sd(x), min = min(x), max = max(x),
         quantiles = unname(quantile(x, c(0.1, 0.25, 0.5, 0.75, 0.9), type = 7)))
  })
  names(summ) <- cols
  rows <- unique(c(1:13, seq(14, nrow(res), by = 97), nrow(res) - 1, nrow(res)))
  picked <- lapply(rows, function(i) {
    list(row = i, studies = which(g$incl[i, ]), k = res$k[i], QE = res$QE[i], I2 = res$I2[i],
         H2 = res$H2[i], tau2 = res$tau2[i], estimate = res$estimate[i])
  })
  # subsets whose fit failed in metafor (e.g. REML not converging); summaries exclude them
  failed <- lapply(which(!g$fit), function(i) which(g$incl[i, ]))
  # hard subsets: metafor's default 100 Fisher scoring iterations do not converge on
  # (1,2,5,9,11,12,13) and (3,5,7,9,11,12,13); on (1,3,5,13), (2,7,10,12) and
  # (2,5,9,11,12) the REML likelihood has a local maximum at tau^2 = 0 and its global
  # maximum inside
  slow <- lapply(list(c(1, 3, 5, 13), c(1, 2, 5, 9, 11, 12, 13), c(3, 5, 7, 9, 11, 12, 13),
                      c(2, 7, 10, 12), c(2, 5, 9, 11, 12)),
                 function(s) {
    i <- which(apply(g$incl, 1, function(r) identical(unname(which(r)), as.integer(s))))
    list(row = i, studies = s, k = res$k[i], QE = res$QE[i], I2 = res$I2[i], H2 = res$H2[i],
         tau2 = res$tau2[i], estimate = res$estimate[i])
  })
  list(method = method, n_subsets = nrow(res), n_fitted = sum(g$fit),
       summary = summ, subsets = picked, slow_subsets = slow, failed = failed)
}

# ---- permutest ------------------------------------------------------------------
perm_case <- function(fit, iter, seed = NULL) {
  p <- if (is.null(seed)) permutest(fit, iter = iter, progbar = FALSE)
       else permutest(fit, iter = iter, progbar = FALSE, seed = seed)
  list(names = rownames(fit$beta), estimate = as.numeric(fit$beta), stat = as.numeric(fit$zval),
       pvalue = as.numeric(fit$pval), pvalue_perm = as.numeric(p$pval),
       qm = fit$QM, qm_pvalue = fit$QMp, qm_pvalue_perm = p$QMp,
       n_perm = length(p$QM.perm), exact = !is.na(p$exact.iter) && length(p$QM.perm) == p$exact.iter,
       exact_iter = p$exact.iter,
       # for statistical comparison of random permutations
       stat_perm_sd = unname(apply(as.matrix(p$zval.perm), 2, sd)),
       qm_perm_mean = mean(p$QM.perm))
}

permutation <- list(
  # no moderators, 2^13 = 8192 <= 10000: all sign flips (exact)
  intercept_exact_reml = perm_case(rma(yi, vi, method = "REML", control = tight), iter = 10000),
  intercept_exact_dl_knha = perm_case(rma(yi, vi, method = "DL", test = "knha"), iter = 10000),
  # no moderators, random sign flips
  intercept_random_reml = perm_case(rma(yi, vi, method = "REML", control = tight), iter = 2000, seed = 1234),
  # binary moderator: 13! / (7! 6!) = 1716 <= 2000 distinct permutations (exact)
  binary_exact_reml_knha = perm_case(rma(yi, vi, mods = ~ random_alloc, method = "REML",
                                         test = "knha", control = tight), iter = 2000),
  # continuous moderator: random permutations
  ablat_random_reml = perm_case(rma(yi, vi, mods = ~ ablat, data = dat, method = "REML",
                                    control = tight),
                                iter = 2000, seed = 1234)
)

out <- list(
  meta = list(metafor = as.character(packageVersion("metafor")), R = R.version.string,
              data = "dat.bcg, escalc(measure = 'RR')"),
  yi = yi, vi = vi, ablat = as.numeric(dat$ablat), random_alloc = random_alloc,
  gosh = list(FE = gosh_case("FE"), REML = gosh_case("REML"), DL = gosh_case("DL")),
  permutation = permutation
)
write_json(out, "tests/reference/scale.json", digits = NA, auto_unbox = TRUE, na = "null",
           pretty = TRUE)
