# Reference values for metaally.robust when a coefficient is identified by one study.
#
# CHE working model on dat.assink2016 (metafor vcalc + rma.mv, rho = 0.6) with a 0/1
# indicator `a` of one study and b = 1 - a:
#   - "no_intercept": mods = ~ 0 + a + b.  clubSandwich reports a's CR2 variance as 0
#     (t = Inf, no Satterthwaite df) and cannot compute the HTZ test of both
#     coefficients (singular C V C'); the single-constraint test of b is defined.
#   - "intercept": mods = ~ a.  Everything is defined (the contrast a uses all studies).
# Two studies are used: study 4 (one effect) and study 2 (three effects).
# Run from the repository root:  Rscript tests/reference/robust_single_study.R
# It writes tests/reference/robust_single_study.json (the Python tests read only that).
suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})

ctrl <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 100000)
dat <- dat.assink2016
V <- vcalc(vi, cluster = study, obs = esid, rho = 0.6, data = dat)

coef_part <- function(fit) {
  ct <- coef_test(fit, vcov = "CR2", cluster = dat$study, test = "Satterthwaite")
  list(estimate = unname(ct$beta), se = unname(ct$SE), df = unname(ct$df_Satt),
       pvalue = unname(ct$p_Satt))
}

wald_part <- function(fit, constraints) {
  wt <- try(Wald_test(fit, constraints = constraints, vcov = "CR2", cluster = dat$study,
                      test = "HTZ"), silent = TRUE)
  if (inherits(wt, "try-error")) return(list(defined = FALSE))
  list(defined = TRUE, stat = wt$Fstat, df1 = wt$df_num, df2 = wt$df_denom, pvalue = wt$p_val)
}

cases <- list()
for (s in c(4, 2)) {
  a <- as.numeric(dat$study == s)
  b <- 1 - a
  none <- rma.mv(yi, V, mods = ~ 0 + a + b, random = ~ 1 | study / esid, data = dat,
                 method = "REML", control = ctrl)
  with_int <- rma.mv(yi, V, mods = ~ a, random = ~ 1 | study / esid, data = dat,
                     method = "REML", control = ctrl)
  cases[[paste0("study", s)]] <- list(
    study = s,
    k_study = sum(dat$study == s),
    no_intercept = c(
      coef_part(none),
      list(sigma2 = none$sigma2,
           wald_both = wald_part(none, constrain_zero(1:2)),
           wald_b = wald_part(none, constrain_zero(2)))
    ),
    intercept = c(
      coef_part(with_int),
      list(sigma2 = with_int$sigma2, wald_a = wald_part(with_int, constrain_zero(2)))
    )
  )
}

out <- list(
  data = list(yi = dat$yi, vi = dat$vi, study = dat$study, esid = dat$esid),
  rho = 0.6,
  cases = cases,
  versions = list(metafor = as.character(packageVersion("metafor")),
                  clubSandwich = as.character(packageVersion("clubSandwich")))
)
write_json(out, "tests/reference/robust_single_study.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "string")
