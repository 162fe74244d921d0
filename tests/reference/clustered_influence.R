# Reference values for leave-one-study-out and case-deletion influence of a clustered
# model, robust inference included.
#
#   Rscript tests/reference/clustered_influence.R     (from the repository root)
#
# writes tests/reference/clustered_influence.json, read by tests/test_influence.py.
# dat.assink2016 (metadat; Assink & Wibbelink 2016): the CHE working model
#   V <- vcalc(vi, cluster = study, obs = esid, rho = 0.6); rma.mv(yi, V, random = ~ 1 | study/esid)
# (REML and ML), then cluster-robust inference by clubSandwich (CR2 and CR1, Satterthwaite df;
# coef_test / conf_int).  For each study s the whole model is refitted without s
# (all of its effects) and made robust again: this is what leave_one_out(r) of a robust
# result must return.  cooks.distance(), dfbetas() of rma.mv with cluster = study give the
# model-based (non-robust) case-deletion influence.
suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})

ctrl <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 100000)
num <- function(x) unname(as.numeric(x))
dat <- dat.assink2016
rho <- 0.6

che_fit <- function(d, method) {
  V <- vcalc(vi, cluster = study, obs = esid, rho = rho, data = d)
  rma.mv(yi, V, random = ~ 1 | study / esid, data = d, method = method, control = ctrl)
}

robust_row <- function(fit, d, type) {
  ct <- coef_test(fit, vcov = type, cluster = d$study, test = "Satterthwaite")
  ci <- conf_int(fit, vcov = type, cluster = d$study, level = 0.95)
  c(k = fit$k, n_clusters = length(unique(d$study)), estimate = num(ct$beta), se = num(ct$SE),
    stat = num(ct$tstat), df = num(ct$df_Satt), pvalue = num(ct$p_Satt),
    ci_low = num(ci$CI_L), ci_high = num(ci$CI_U), sigma2_study = fit$sigma2[1],
    sigma2_within = fit$sigma2[2])
}

studies <- unique(dat$study)
cases <- list()
for (method in c("REML", "ML")) {
  for (type in c("CR2", "CR1")) {
    full <- che_fit(dat, method)
    rows <- lapply(studies, function(s) {
      d <- dat[dat$study != s, ]
      robust_row(che_fit(d, method), d, type)
    })
    rows <- as.data.frame(do.call(rbind, rows))
    cases[[length(cases) + 1]] <- list(
      id = paste(method, type, sep = "-"), method = method, adjust = type,
      full = as.list(robust_row(full, dat, type)),
      leave1out = c(list(omitted = studies), lapply(rows, num)))
  }
}

# model-based case-deletion influence by study (REML), metafor's rma.mv methods
full <- che_fit(dat, "REML")
cd <- cooks.distance(full, cluster = dat$study, reestimate = TRUE)
db <- dfbetas(full, cluster = dat$study, reestimate = TRUE)
influence_ref <- list(study = num(names(cd)), cooks = num(cd), dfbetas = num(db[, 1]))

out <- list(
  generated_by = "tests/reference/clustered_influence.R",
  versions = list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                  clubSandwich = as.character(packageVersion("clubSandwich"))),
  data = list(yi = dat$yi, vi = dat$vi, study = dat$study, esid = dat$esid),
  rho = rho, cases = cases, influence = influence_ref)
write_json(out, "tests/reference/clustered_influence.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "null")
