# Reference values for metaally's small-study bias and influence diagnostics.
#
#   Rscript tests/reference/diagnostics.R     (from the repository root)
#
# writes tests/reference/diagnostics.json, read by tests/test_bias.py and
# tests/test_influence.py. metafor 3.8 (regtest, ranktest, trimfill, leave1out,
# influence, cumul), stats::lm (PET-PEESE) and clubSandwich (Egger's sandwich,
# Rodgers & Pustejovsky 2021) on public data sets from metadat:
#   bcg        dat.bcg, log risk ratios (escalc measure = "RR"); Colditz et al. 1994
#   hackshaw   dat.hackshaw1998, log odds ratios as stored; Hackshaw et al. 1997
#   egger      dat.egger2001, log odds ratios (escalc measure = "OR"); Egger et al. 2001
#   hackshaw_ties  dat.hackshaw1998 with vi rounded to one significant digit
#              (ties in vi: ranktest's normal approximation with tie correction)
#   assink     dat.assink2016 (dependent effects: CHE working model, rho = 0.6)
suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
ctrl_mv <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 100000)

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
egg <- escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = dat.egger2001)
hack <- dat.hackshaw1998

datasets <- list(
  bcg = list(yi = c(bcg$yi), vi = c(bcg$vi), year = bcg$year, ablat = bcg$ablat),
  hackshaw = list(yi = hack$yi, vi = hack$vi, year = hack$year),
  egger = list(yi = c(egg$yi), vi = c(egg$vi), year = egg$year),
  hackshaw_ties = list(yi = hack$yi, vi = signif(hack$vi, 1), year = hack$year)
)

# ---- univariate diagnostics ------------------------------------------------
# fits: one random-effects model per (data set, method, test, moderators)
fits <- list(
  list(id = "bcg_REML_z", data = "bcg", method = "REML", test = "z", mods = FALSE),
  list(id = "hackshaw_REML_z", data = "hackshaw", method = "REML", test = "z", mods = FALSE),
  list(id = "egger_REML_z", data = "egger", method = "REML", test = "z", mods = FALSE),
  list(id = "bcg_DL_knha", data = "bcg", method = "DL", test = "knha", mods = FALSE),
  list(id = "hackshaw_FE_z", data = "hackshaw", method = "FE", test = "z", mods = FALSE),
  list(id = "bcg_REML_z_ablat", data = "bcg", method = "REML", test = "z", mods = TRUE)
)

fit_model <- function(f) {
  d <- datasets[[f$data]]
  if (f$mods) {
    rma(d$yi, d$vi, mods = ~ d$ablat, method = f$method, test = f$test, control = ctrl)
  } else {
    rma(d$yi, d$vi, method = f$method, test = f$test, control = ctrl)
  }
}

num <- function(x) as.numeric(unname(x))

out_fits <- list()
for (f in fits) {
  res <- fit_model(f)
  d <- datasets[[f$data]]
  entry <- list(data = f$data, method = f$method, test = f$test, mods = if (f$mods) "ablat" else NULL,
                estimate = num(res$beta), se = num(res$se), tau2 = num(res$tau2))
  inf <- influence(res)
  entry$influence <- list(
    rstudent = num(inf$inf$rstudent), dffits = num(inf$inf$dffits), cooks = num(inf$inf$cook.d),
    cov_ratio = num(inf$inf$cov.r), tau2_del = num(inf$inf$tau2.del), q_del = num(inf$inf$QE.del),
    hat = num(inf$inf$hat), weight = num(inf$inf$weight),
    dfbetas = setNames(lapply(seq_len(res$p), function(j) num(inf$dfbs[[j]])), rownames(res$beta)),
    influential = inf$inf$inf == "*")
  if (!f$mods) {
    l1 <- leave1out(res)
    entry$leave1out <- list(estimate = num(l1$estimate), se = num(l1$se), stat = num(l1[[3]]),
                            pvalue = num(l1$pval), ci_low = num(l1$ci.lb), ci_high = num(l1$ci.ub),
                            q = num(l1$Q), q_pvalue = num(l1$Qp), tau2 = num(l1$tau2),
                            i2 = num(l1$I2), h2 = num(l1$H2))
    cu <- cumul(res, order = d$year)
    entry$cumul <- list(order = d$year, added = order(d$year),
                        estimate = num(cu$estimate), se = num(cu$se), ci_low = num(cu$ci.lb),
                        ci_high = num(cu$ci.ub), pvalue = num(cu$pvals), tau2 = num(cu$tau2),
                        i2 = num(cu$I2))
  }
  out_fits[[f$id]] <- entry
}

# ---- small-study bias ------------------------------------------------------
bias <- list()
for (name in names(datasets)) {
  d <- datasets[[name]]
  res <- rma(d$yi, d$vi, method = "REML", control = ctrl)
  rt <- regtest(res)
  rk <- ranktest(res)
  entry <- list(
    regtest = list(stat = num(rt$zval), pvalue = num(rt$pval), limit_estimate = num(rt$est),
                   limit_ci_low = num(rt$ci.lb), limit_ci_high = num(rt$ci.ub)),
    ranktest = list(tau = num(rk$tau), pvalue = num(rk$pval)))
  tf <- list()
  for (est in c("L0", "R0", "Q0")) {
    for (method in c("REML", "DL")) {
      m <- rma(d$yi, d$vi, method = method, control = ctrl)
      t <- tryCatch(trimfill(m, estimator = est, control = ctrl), error = function(e) NULL)
      if (is.null(t)) {  # metafor stops (Q0's square root of a negative number)
        tf[[paste(est, method, sep = "_")]] <- list(estimator = est, method = method, error = TRUE)
        next
      }
      filled <- t$fill
      tf[[paste(est, method, sep = "_")]] <- list(
        estimator = est, method = method, k0 = t$k0, side = t$side, estimate = num(t$beta),
        se = num(t$se), ci_low = num(t$ci.lb), ci_high = num(t$ci.ub), pvalue = num(t$pval),
        tau2 = num(t$tau2), filled_yi = num(t$yi[filled]), filled_vi = num(t$vi[filled]))
    }
  }
  # side forced against the default choice
  m <- rma(d$yi, d$vi, method = "REML", control = ctrl)
  other <- if (trimfill(m, control = ctrl)$side == "left") "right" else "left"
  t <- trimfill(m, side = other, control = ctrl)
  tf[["L0_REML_forced"]] <- list(
    estimator = "L0", method = "REML", side_arg = other, k0 = t$k0, side = t$side,
    estimate = num(t$beta), se = num(t$se), ci_low = num(t$ci.lb), ci_high = num(t$ci.ub),
    pvalue = num(t$pval), tau2 = num(t$tau2), filled_yi = num(t$yi[t$fill]),
    filled_vi = num(t$vi[t$fill]))
  entry$trimfill <- tf
  sei <- sqrt(d$vi)
  pet <- summary(lm(d$yi ~ sei, weights = 1 / d$vi))
  peese <- summary(lm(d$yi ~ d$vi, weights = 1 / d$vi))
  pet_ci <- confint(lm(d$yi ~ sei, weights = 1 / d$vi))[1, ]
  peese_ci <- confint(lm(d$yi ~ d$vi, weights = 1 / d$vi))[1, ]
  pet_t <- coef(pet)[1, 3]
  one_sided <- pt(pet_t, df = pet$df[2], lower.tail = FALSE)
  chosen <- if (one_sided < 0.05) "PEESE" else "PET"
  entry$pet_peese <- list(
    pet_estimate = coef(pet)[1, 1], pet_se = coef(pet)[1, 2], pet_pvalue = coef(pet)[1, 4],
    pet_ci_low = num(pet_ci[1]), pet_ci_high = num(pet_ci[2]),
    peese_estimate = coef(peese)[1, 1], peese_se = coef(peese)[1, 2],
    peese_pvalue = coef(peese)[1, 4], peese_ci_low = num(peese_ci[1]),
    peese_ci_high = num(peese_ci[2]), chosen = chosen)
  bias[[name]] <- entry
}

# ---- dependent effects: CHE working model (dat.assink2016) ----------------
dat <- dat.assink2016
rho <- 0.6
che_fit <- function(d, mods = NULL) {
  V <- rho * outer(sqrt(d$vi), sqrt(d$vi)) * outer(d$study, d$study, "==")
  diag(V) <- d$vi
  if (is.null(mods)) {
    rma.mv(yi, V, random = ~ 1 | study / esid, data = d, control = ctrl_mv)
  } else {
    rma.mv(yi, V, mods = mods, random = ~ 1 | study / esid, data = d, control = ctrl_mv)
  }
}
egger_fit <- che_fit(dat, mods = ~ sqrt(vi))
ct <- coef_test(egger_fit, vcov = "CR2")
ci <- conf_int(egger_fit, vcov = "CR2")
sandwich <- list(
  stat = ct$tstat[2], df = ct$df_Satt[2], pvalue = ct$p_Satt[2],
  limit_estimate = ct$beta[1], limit_se = ct$SE[1], limit_df = ct$df_Satt[1],
  limit_ci_low = ci$CI_L[1], limit_ci_high = ci$CI_U[1])

studies <- unique(dat$study)
l1 <- lapply(studies, function(s) {
  r <- che_fit(dat[dat$study != s, ])
  c(estimate = num(r$beta), se = r$se, stat = r$zval, pvalue = r$pval, ci_low = r$ci.lb,
    ci_high = r$ci.ub, sigma2_study = r$sigma2[1], sigma2_within = r$sigma2[2])
})
l1 <- do.call(rbind, l1)
# cumulative: studies in order of their (first) year; all effects of a study enter together
study_year <- tapply(dat$year, dat$study, min)[as.character(studies)]
study_order <- studies[order(study_year)]
cu <- lapply(seq_along(study_order), function(i) {
  r <- che_fit(dat[dat$study %in% study_order[seq_len(i)], ])
  c(estimate = num(r$beta), se = r$se, ci_low = r$ci.lb, ci_high = r$ci.ub, pvalue = r$pval,
    sigma2_study = r$sigma2[1], sigma2_within = r$sigma2[2])
})
cu <- do.call(rbind, cu)
multilevel <- list(
  data = list(yi = dat$yi, vi = dat$vi, study = dat$study, esid = dat$esid, year = dat$year),
  rho = rho, egger_sandwich = sandwich,
  leave1out = c(list(omitted = studies), lapply(as.data.frame(l1), num)),
  cumul = c(list(added = study_order), lapply(as.data.frame(cu), num)))

out <- list(
  generated_by = "tests/reference/diagnostics.R",
  versions = list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                  clubSandwich = as.character(packageVersion("clubSandwich"))),
  datasets = datasets, fits = out_fits, bias = bias, multilevel = multilevel)
write_json(out, "tests/reference/diagnostics.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "null")
