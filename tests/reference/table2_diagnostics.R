# Reference values for the Table 2 small-study and influence results (results/small_study.csv,
# results/leave_one_out.csv; analyses/small_study.py and analyses/influence.py).
#
# Reads results/effects.csv (rows with included == TRUE).  Analyses: all effects, and each
# targeted component with >= 3 studies.  In each:
#   Egger's sandwich: V <- vcalc(vi, cluster = study_id, obs = es_id, rho = 0.6)
#                     rma.mv(yi, V, mods = ~ sei, random = ~ 1 | study_id/es_id, REML)
#                     clubSandwich::coef_test / conf_int(vcov = "CR2", cluster = study_id)
#   one composite effect per study: aggregate(escalc, cluster = study_id, rho = 0.6), then
#                     rma(REML), regtest(rma), ranktest(rma), trimfill(rma) (L0),
#                     PET lm(yi ~ sei, weights = 1/vi), PEESE lm(yi ~ vi, weights = 1/vi)
#   leave-one-out:    the CHE model above (no moderator) with each study and all of its effects
#                     left out, robust(clubSandwich = TRUE) (CR2, Satterthwaite df)
#
# Run from the repository root:  Rscript tests/reference/table2_diagnostics.R
source("tests/reference/table2_common.R")  # rho, components, ctrl, eff, parts, che_model
eff$sei <- sqrt(eff$vi)

analyses <- list(overall = eff)
for (comp in components) {
  d <- eff[vapply(parts, function(p) comp %in% p, logical(1)), ]
  if (length(unique(d$study_id)) >= 3) analyses[[comp]] <- d
}

egger_sandwich <- function(d) {
  m <- che_model(d, mods = ~ sei)
  ct <- coef_test(m, vcov = "CR2", cluster = d$study_id)
  ci <- conf_int(m, vcov = "CR2", cluster = d$study_id, level = 0.95)
  list(stat = ct$tstat[2], df = ct$df_Satt[2], pvalue = ct$p_Satt[2],
       estimate = ci$beta[1], ci_low = ci$CI_L[1], ci_high = ci$CI_U[1])
}

wls_intercept <- function(f, d) {
  s <- summary(lm(f, data = d, weights = 1 / vi))$coefficients
  ci <- confint(lm(f, data = d, weights = 1 / vi))
  list(stat = s[1, "t value"], df = nrow(d) - 2, pvalue = s[1, "Pr(>|t|)"], estimate = s[1, 1],
       ci_low = ci[1, 1], ci_high = ci[1, 2])
}

composite_tests <- function(d) {
  agg <- aggregate(escalc(yi = yi, vi = vi, data = d), cluster = study_id, rho = rho)
  agg$sei <- sqrt(agg$vi)
  m <- rma(yi, vi, data = agg, method = "REML", control = ctrl_uni)
  reg <- regtest(m)
  rank <- ranktest(m)
  tf <- trimfill(m, estimator = "L0", control = ctrl_uni)  # refits do not inherit control
  list(
    random_effects = list(stat = m$zval, pvalue = m$pval, estimate = m$beta[1],
                          ci_low = m$ci.lb, ci_high = m$ci.ub),
    egger = list(stat = reg$zval, pvalue = reg$pval, estimate = reg$est, ci_low = reg$ci.lb,
                 ci_high = reg$ci.ub),
    rank = list(stat = rank$tau, pvalue = rank$pval),
    trim_and_fill = list(k0 = tf$k0, side = tf$side, estimate = tf$beta[1], ci_low = tf$ci.lb,
                         ci_high = tf$ci.ub),
    pet = wls_intercept(yi ~ sei, agg),
    peese = wls_intercept(yi ~ vi, agg)
  )
}

che <- function(d) {
  m <- che_model(d)
  r <- robust(m, cluster = d$study_id, clubSandwich = TRUE)
  list(k_studies = length(unique(d$study_id)), k_effects = nrow(d), estimate = r$beta[1],
       se = r$se, ci_low = r$ci.lb, ci_high = r$ci.ub, df = r$ddf, pvalue = r$pval,
       sigma2_study = m$sigma2[1], sigma2_within = m$sigma2[2], i2 = i2_multilevel(m))
}

leave_one_out <- function(d) {
  studies <- unique(d$study_id)
  rows <- lapply(studies, function(s) c(list(omitted = s), che(d[d$study_id != s, ])))
  c(list(c(list(omitted = "(none)"), che(d))), rows)
}

out <- list(
  source = "results/effects.csv",
  settings = list(rho = rho, method = "REML",
                  metafor = as.character(packageVersion("metafor")),
                  clubSandwich = as.character(packageVersion("clubSandwich"))),
  analyses = lapply(analyses, function(d) {
    c(list(k_studies = length(unique(d$study_id)), k_effects = nrow(d),
           egger_sandwich = egger_sandwich(d)), composite_tests(d))
  }),
  leave_one_out = lapply(analyses, leave_one_out)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           "tests/reference/table2_diagnostics.json")
