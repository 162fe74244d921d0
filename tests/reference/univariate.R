# Reference values for metaally's univariate engine (tests/test_example_*.py, tests/test_univariate*.py).
# metafor 3.8 rma.uni for every tau^2 estimator x test, with and without one moderator, on four
# public data sets from metadat; Q-profile tau^2 CIs (confint) and prediction intervals (predict).
# Tight convergence so that the references are the exact optima (metafor's default threshold
# leaves REML tau^2 ~1e-4 off).  Run: Rscript tests/reference/univariate.R
suppressMessages({library(metafor); library(metadat); library(jsonlite)})

# threshold: ML/REML/EB (absolute change in tau^2); tol: PM (uniroot).  For data on a large scale
# (dat.normand1999: tau^2 ~ 800) an absolute 1e-13 is below double precision, so it is scaled.
tight <- function(yi) list(threshold = 1e-13 * max(1, var(yi)), tol = 1e-13 * max(1, var(yi)),
                           maxiter = 10000)

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
normand <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
                  data = dat.normand1999)
normand$logn <- log(normand$n1i + normand$n2i)
datasets <- list(
  bcg = list(yi = c(bcg$yi), vi = c(bcg$vi), mod = bcg$ablat, mod_name = "ablat",
             source = "dat.bcg, log risk ratios (escalc RR); moderator: absolute latitude"),
  normand1999 = list(yi = c(normand$yi), vi = c(normand$vi), mod = normand$logn, mod_name = "logn",
                     source = "dat.normand1999, mean differences in length of stay (escalc MD); moderator: log total n"),
  hackshaw1998 = list(yi = dat.hackshaw1998$yi, vi = dat.hackshaw1998$vi, mod = dat.hackshaw1998$year,
                      mod_name = "year", source = "dat.hackshaw1998, log odds ratios; moderator: publication year"),
  raudenbush1985 = list(yi = dat.raudenbush1985$yi, vi = dat.raudenbush1985$vi, mod = dat.raudenbush1985$weeks,
                        mod_name = "weeks", source = "dat.raudenbush1985, standardized mean differences; moderator: weeks of contact")
)
methods <- c("FE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML")
tests <- c("z", "knha", "adhoc")

fit_record <- function(res, dataset, model, method, test) {
  rec <- list(dataset = dataset, model = model, method = method, test = test,
              k = res$k, p = res$p, coef_names = rownames(res$beta),
              beta = c(res$beta), se = res$se, stat = res$zval, pval = res$pval,
              ci_lb = res$ci.lb, ci_ub = res$ci.ub, tau2 = res$tau2, I2 = res$I2, H2 = res$H2,
              QE = res$QE, QEp = res$QEp, QM = res$QM, QMp = res$QMp, QMdf = res$QMdf,
              dfs = if (is.na(res$ddf[1])) NULL else res$ddf[1], loglik = c(logLik(res)))
  if (res$p == 1 && model %in% c("intercept", "fixed_tau2")) {
    pr <- predict(res)
    rec$pi_lb <- pr$pi.lb
    rec$pi_ub <- pr$pi.ub
  }
  rec
}

# Fisher scoring (ML/REML/EB) can oscillate at this tight threshold; a damped step (stepadj)
# reaches the same root of the score equation.
fit <- function(d, model, method, test) {
  run <- function(control) suppressWarnings(if (model == "intercept") {
    rma(d$yi, d$vi, method = method, test = test, control = control)
  } else {
    rma(d$yi, d$vi, mods = ~ d$mod, method = method, test = test, control = control)
  })
  res <- try(run(tight(d$yi)), silent = TRUE)
  if (inherits(res, "try-error")) res <- run(c(tight(d$yi), list(stepadj = 0.5)))
  res
}

records <- list()
qprofile <- list()
for (name in names(datasets)) {
  d <- datasets[[name]]
  for (model in c("intercept", "moderator")) {
    for (method in methods) {
      for (test in tests) {
        res <- fit(d, model, method, test)
        records[[length(records) + 1]] <- fit_record(res, name, model, method, test)
        if (test == "z" && method != "FE") {
          # confint() searches tau^2 only up to max(100, 10 tau2-hat) by default and reports that
          # cap (with ">") when the bound lies beyond (dat.normand1999, DL/HS); metaally has no cap.
          ci <- confint(res, control = list(tol = tight(d$yi)$tol, maxiter = 10000,
                                            tau2.max = 1e6 * max(1, var(d$yi))))
          qprofile[[length(qprofile) + 1]] <- list(
            dataset = name, model = model, method = method,
            tau2_lb = ci$random["tau^2", "ci.lb"], tau2_ub = ci$random["tau^2", "ci.ub"])
        }
      }
    }
  }
}

# metafor conventions worth pinning: a model without intercept (tau^2 and QE use centred yi),
# a fixed tau^2 (argument tau2=), and a moderator model with the tau^2 = 0 boundary.
extra <- list()
d <- datasets$bcg
for (method in c("DL", "REML", "PM")) {
  res <- rma(d$yi, d$vi, mods = ~ d$mod - 1, method = method, control = tight(d$yi))
  extra[[length(extra) + 1]] <- fit_record(res, "bcg", "no_intercept", method, "z")
}
res <- rma(d$yi, d$vi, tau2 = 0.1, test = "knha")
extra[[length(extra) + 1]] <- c(fit_record(res, "bcg", "fixed_tau2", "REML", "knha"), list(fixed_tau2 = 0.1))

out <- list(
  generated_by = "tests/reference/univariate.R",
  metafor_version = as.character(packageVersion("metafor")),
  control = "threshold = tol = 1e-13 * max(1, var(yi)), maxiter = 10000 (stepadj = 0.5 if needed)",
  data = lapply(datasets, function(d) list(yi = d$yi, vi = d$vi, mod = d$mod, mod_name = d$mod_name,
                                           source = d$source)),
  fits = records, qprofile = qprofile, extra = extra
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE, null = "null"),
           "tests/reference/univariate.json")
cat("wrote", length(records), "fits,", length(qprofile), "Q-profile CIs,", length(extra), "extra fits\n")
