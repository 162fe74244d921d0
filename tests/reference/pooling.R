# Reference values for metaally.pooling (pool_by_component, component_differences).
#
# Reads results/effects.csv (rows with included == TRUE), pools every targeted component,
# every Table 2 group and all effects together, as the report pools them:
#   che:        V <- vcalc(vi, cluster = study_id, obs = es_id, rho = 0.6)
#               rma.mv(yi, V, random = ~ 1 | study_id/es_id, method = "REML")
#               robust(., cluster = study_id, clubSandwich = TRUE)   (CR2, Satterthwaite df)
#   aggregate:  aggregate(escalc, cluster = study_id, rho = 0.6) then rma(REML, test = "knha")
#   univariate: rma(yi, vi, REML, test = "knha") on all effects as if independent
# A group with one study reports that study's own composite effect with a z interval (see
# single_study below).
# Differences between components: indicators (multi-membership), no intercept, CHE + CR2,
# clubSandwich::Wald_test(constrain_equal(...), test = "HTZ").
#
# Run from the repository root:  Rscript tests/reference/pooling.R
source("tests/reference/table2_common.R")  # rho, components, ctrl, eff, parts, che_model

empty_row <- function() {
  list(k_studies = 0L, k_effects = 0L, estimate = NA, se = NA, ci_low = NA, ci_high = NA,
       df = NA, pvalue = NA, pi_low = NA, pi_high = NA, sigma2_study = NA, sigma2_within = NA,
       i2 = NA)
}

single_study <- function(d, model) {
  # The study's own composite effect under the model's within-study structure, z interval:
  # che: rma.mv on the one study (sigma2 of the single-level study factor fixed at 0,
  #      sigma2_within estimated); univariate: rma on its effects; aggregate (or a single
  #      effect): aggregate(struct = "CS", rho).
  within <- NA
  if (nrow(d) > 1 && model == "che") {
    m <- suppressWarnings(che_model(d))
    est <- m$beta[1]; se <- m$se; within <- m$sigma2[2]
  } else if (nrow(d) > 1 && model == "univariate") {
    m <- rma(yi, vi, data = d, method = "REML", control = ctrl_uni)
    est <- m$beta[1]; se <- m$se
  } else {
    agg <- aggregate(escalc(yi = yi, vi = vi, data = d), cluster = study_id, rho = rho)
    est <- agg$yi[1]; se <- sqrt(agg$vi[1])
  }
  z <- qnorm(0.975)
  list(k_studies = 1L, k_effects = nrow(d), estimate = est, se = se, ci_low = est - z * se,
       ci_high = est + z * se, df = NA, pvalue = 2 * pnorm(-abs(est / se)), pi_low = NA,
       pi_high = NA, sigma2_study = NA, sigma2_within = within, i2 = NA)
}

fit_che <- function(d) {
  m <- che_model(d)
  r <- robust(m, cluster = d$study_id, clubSandwich = TRUE)
  p <- predict(r)
  list(estimate = r$beta[1], se = r$se, ci_low = r$ci.lb, ci_high = r$ci.ub, df = r$ddf,
       pvalue = r$pval, pi_low = p$pi.lb, pi_high = p$pi.ub, sigma2_study = m$sigma2[1],
       sigma2_within = m$sigma2[2], i2 = i2_multilevel(m))
}

fit_aggregate <- function(d) {
  agg <- aggregate(escalc(yi = yi, vi = vi, data = d), cluster = study_id, rho = rho)
  m <- rma(yi, vi, data = agg, method = "REML", test = "knha", control = ctrl_uni)
  p <- predict(m)
  list(estimate = m$beta[1], se = m$se, ci_low = m$ci.lb, ci_high = m$ci.ub, df = m$k - 1,
       pvalue = m$pval, pi_low = p$pi.lb, pi_high = p$pi.ub, sigma2_study = m$tau2,
       sigma2_within = NA, i2 = m$I2)
}

fit_univariate <- function(d) {
  m <- rma(yi, vi, data = d, method = "REML", test = "knha", control = ctrl_uni)
  p <- predict(m)
  list(estimate = m$beta[1], se = m$se, ci_low = m$ci.lb, ci_high = m$ci.ub, df = m$k - 1,
       pvalue = m$pval, pi_low = p$pi.lb, pi_high = p$pi.ub, sigma2_study = m$tau2,
       sigma2_within = NA, i2 = m$I2)
}

fitters <- list(che = fit_che, aggregate = fit_aggregate, univariate = fit_univariate)

pool <- function(d, grouping, level, model) {
  ks <- length(unique(d$study_id))
  row <- if (ks == 0) empty_row() else if (ks == 1) single_study(d, model) else fitters[[model]](d)
  row$k_studies <- ks
  row$k_effects <- nrow(d)
  c(list(grouping = grouping, level = level, model = model), row)
}

groups <- list()
for (comp in components) {
  groups[[length(groups) + 1]] <- list("components", comp,
                                        vapply(parts, function(p) comp %in% p, logical(1)))
}
for (grp in unique(eff$table_group)) {
  groups[[length(groups) + 1]] <- list("table_group", grp, eff$table_group == grp)
}
groups[[length(groups) + 1]] <- list("overall", "overall", rep(TRUE, nrow(eff)))

pooled <- list()
for (model in names(fitters)) {
  pooled[[model]] <- lapply(groups, function(g) pool(eff[g[[3]], ], g[[1]], g[[2]], model))
}

# Multi-valued cells (";") put an effect in every level they name.
has <- function(column, level) {
  vapply(strsplit(column, ";", fixed = TRUE), function(p) level %in% p, logical(1))
}

# Tests of differences: one 0/1 indicator per level of `column` with >= 2 studies (one
# cluster cannot give a CR2 variance), no intercept, CHE; effects left without any
# indicator are dropped.
indicator_model <- function(column, levels) {
  n_studies <- sapply(levels, function(lv) length(unique(eff$study_id[has(column, lv)])))
  present <- levels[n_studies >= 2]
  X <- sapply(present, function(lv) as.numeric(has(column, lv)))
  keep <- rowSums(X) > 0
  d <- eff[keep, ]
  list(levels = present, k_studies = as.integer(n_studies[present]), d = d,
       m = che_model(d, mods = X[keep, , drop = FALSE], intercept = FALSE))
}

# Differences between components
im <- indicator_model(eff$components, components)
present <- im$levels; d <- im$d; m <- im$m
r <- robust(m, cluster = d$study_id, clubSandwich = TRUE)
wald <- Wald_test(m, constraints = constrain_equal(seq_along(present)), vcov = "CR2",
                  cluster = d$study_id, test = "HTZ")
differences <- list(
  levels = present,
  k_studies = im$k_studies,
  estimate = as.numeric(r$beta), se = r$se, df = r$ddf, ci_low = r$ci.lb, ci_high = r$ci.ub,
  pvalue = r$pval, sigma2_study = m$sigma2[1], sigma2_within = m$sigma2[2],
  test = list(stat = wald$Fstat, df1 = wald$df_num, df2 = wald$df_denom, pvalue = wald$p_val)
)

# --- pooling by technique / outcome component, gap-map cells, technique test ------
techniques <- c("podcast", "expert_video", "story_video", "video", "documentary",
                "testimonials", "leader_story", "reading_privilege", "reading_disadvantage",
                "reflection_writing", "infographic")
outcome_components <- c(components, "other")

by_column <- list()
for (column in c("technique", "outcome_component")) {
  levels <- if (column == "technique") techniques else outcome_components
  by_column[[column]] <- list()
  for (model in names(fitters)) {
    by_column[[column]][[model]] <- lapply(
      levels, function(lv) pool(eff[has(eff[[column]], lv), ], column, lv, model))
  }
}

# evidence gap map: targeted component (rows) x outcome component (columns), CHE
cells <- list()
for (comp in components) {
  for (oc in outcome_components) {
    cell <- pool(eff[has(eff$components, comp) & has(eff$outcome_component, oc), ],
                 "cell", oc, "che")
    cell$row <- comp
    cells[[length(cells) + 1]] <- cell
  }
}

# "all techniques equal": indicators of the techniques with >= 2 studies, no intercept, CHE.
# CR2 + HTZ when there are more studies than coefficients; otherwise the model-based Wald
# chi-square test of the same constraints (anova(m, X = L)) and z inference.
im <- indicator_model(eff$technique, techniques)
tpresent <- im$levels; d <- im$d; m <- im$m
L <- cbind(-1, diag(length(tpresent) - 1))
if (length(unique(d$study_id)) > length(tpresent)) {
  r <- robust(m, cluster = d$study_id, clubSandwich = TRUE)
  w <- Wald_test(m, constraints = constrain_equal(seq_along(tpresent)), vcov = "CR2",
                 cluster = d$study_id, test = "HTZ")
  coefs <- list(estimate = as.numeric(r$beta), se = r$se, df = r$ddf, ci_low = r$ci.lb,
                ci_high = r$ci.ub, pvalue = r$pval)
  test <- list(inference = "CR2", stat = w$Fstat, df1 = w$df_num, df2 = w$df_denom,
               pvalue = w$p_val)
} else {
  a <- anova(m, X = L)
  coefs <- list(estimate = as.numeric(m$beta), se = m$se, df = rep(NA, length(tpresent)),
                ci_low = m$ci.lb, ci_high = m$ci.ub, pvalue = m$pval)
  test <- list(inference = "model", stat = a$QM, df1 = a$QMdf[1], df2 = NA, pvalue = a$QMp)
}
technique_differences <- c(
  list(levels = tpresent, k_studies = im$k_studies), coefs,
  list(sigma2_study = m$sigma2[1], sigma2_within = m$sigma2[2], test = test)
)

out <- list(
  source = "results/effects.csv",
  settings = list(rho = rho, method = "REML",
                  metafor = as.character(packageVersion("metafor")),
                  clubSandwich = as.character(packageVersion("clubSandwich"))),
  pooled = pooled,
  differences = differences,
  by_column = by_column,
  cells = cells,
  technique_differences = technique_differences
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           "tests/reference/pooling.json")
