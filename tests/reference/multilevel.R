# Reference values for metaally.che / robust / aggregate.
#
# CHE working model fitted with metafor (vcalc + rma.mv, tight BFGS), cluster-robust
# inference with clubSandwich (CR2 / CR1, Satterthwaite df, HTZ Wald test), and
# aggregate.escalc (struct "CS").  Run from the repository root:
#     Rscript tests/reference/multilevel.R
# It writes tests/reference/multilevel.json, which the Python tests read (CI has no R).
suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})

ctrl <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 100000)

datasets <- list(
  # Konstantopoulos (2011): 56 schools in 11 districts; moderator: year of study, centred.
  konstantopoulos2011 = within(dat.konstantopoulos2011, {
    cluster <- district
    es_id <- school
    mod <- year - mean(year)
  }),
  # Assink & Wibbelink (2016): 100 effects in 17 studies; moderator: deltype (3 levels).
  assink2016 = within(dat.assink2016, {
    cluster <- study
    es_id <- esid
    mod <- deltype
  })
)

# I^2 of the multilevel model (metafor FAQ, "I^2 for multilevel and multivariate models").
multilevel_i2 <- function(fit) {
  W <- diag(1 / fit$vi)
  X <- model.matrix(fit)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  100 * sum(fit$sigma2) / (sum(fit$sigma2) + (fit$k - fit$p) / sum(diag(P)))
}

robust_part <- function(fit, dat, type, constraints) {
  vc <- vcovCR(fit, cluster = dat$cluster, type = type)
  ct <- coef_test(fit, vcov = vc, test = "Satterthwaite")
  ci <- conf_int(fit, vcov = vc, test = "Satterthwaite", level = 0.95)
  out <- list(
    vcov = unname(as.matrix(vc)),
    se = unname(ct$SE), df = unname(ct$df_Satt), stat = unname(ct$tstat),
    pvalue = unname(ct$p_Satt), ci_low = unname(ci$CI_L), ci_high = unname(ci$CI_U)
  )
  if (fit$p > 1) {
    wt <- Wald_test(fit, constraints = constrain_zero(2:fit$p), vcov = vc, test = "HTZ")
    out$qm <- wt$Fstat
    out$qm_df1 <- wt$df_num
    out$qm_df2 <- wt$df_denom
    out$qm_pvalue <- wt$p_val
    wc <- Wald_test(fit, constraints = constraints, vcov = vc, test = "HTZ")
    out$wald_constraints <- unname(constraints)
    out$wald <- list(stat = wc$Fstat, df1 = wc$df_num, df2 = wc$df_denom, pvalue = wc$p_val)
  } else {
    rb <- robust(fit, cluster = dat$cluster, clubSandwich = TRUE, vcov = type)
    pr <- predict(rb)
    out$pi_low <- pr$pi.lb
    out$pi_high <- pr$pi.ub
    out$metafor_se <- rb$se
    out$metafor_df <- rb$ddf
  }
  out
}

cases <- list()
grid <- expand.grid(dataset = names(datasets), rho = c(0, 0.6), mods = c(FALSE, TRUE),
                    method = "REML", stringsAsFactors = FALSE)
grid <- rbind(grid, data.frame(dataset = names(datasets), rho = 0.6, mods = c(FALSE, TRUE),
                               method = "ML"))
for (i in seq_len(nrow(grid))) {
  g <- grid[i, ]
  dat <- datasets[[g$dataset]]
  V <- vcalc(vi, cluster = cluster, obs = es_id, rho = g$rho, data = dat)
  if (g$mods) {
    fit <- rma.mv(yi, V, mods = ~ mod, random = ~ 1 | cluster / es_id, data = dat,
                  method = g$method, control = ctrl)
  } else {
    fit <- rma.mv(yi, V, random = ~ 1 | cluster / es_id, data = dat,
                  method = g$method, control = ctrl)
  }
  p <- fit$p
  constraints <- if (p > 2) rbind(c(0, 1, -1), c(0, 1, 0)) else matrix(c(0, 1), 1, 2)
  id <- sprintf("%s-rho%s-%s-%s", g$dataset, g$rho, if (g$mods) "mods" else "intercept",
                g$method)
  case <- list(
    id = id, dataset = g$dataset, rho = g$rho, mods = g$mods, method = g$method,
    coef_names = I(rownames(fit$beta)),
    estimate = unname(c(fit$beta)), se = unname(fit$se), stat = unname(fit$zval),
    pvalue = unname(fit$pval), ci_low = unname(fit$ci.lb), ci_high = unname(fit$ci.ub),
    vcov = unname(fit$vb),
    sigma2_study = fit$sigma2[1], sigma2_within = fit$sigma2[2],
    loglik = as.numeric(logLik(fit)), k = fit$k, n_clusters = fit$s.nlevels[1],
    qe = fit$QE, qe_pvalue = fit$QEp, i2 = multilevel_i2(fit),
    CR2 = robust_part(fit, dat, "CR2", constraints),
    CR1 = robust_part(fit, dat, "CR1", constraints)
  )
  if (g$mods) {
    case$qm <- fit$QM
    case$qm_pvalue <- fit$QMp
  } else {
    pr <- predict(fit)
    case$pi_low <- pr$pi.lb
    case$pi_high <- pr$pi.ub
  }
  cases[[id]] <- case
}

# One effect per study: the multilevel model collapses to rma(method = "REML").
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
uni <- rma(yi, vi, data = bcg, method = "REML", control = list(threshold = 1e-12, maxiter = 10000))
one_per_study <- list(yi = c(bcg$yi), vi = c(bcg$vi), estimate = c(uni$beta), se = uni$se,
                      tau2 = uni$tau2)

# aggregate.escalc with struct = "CS".
aggregates <- list()
for (name in names(datasets)) {
  for (rho in c(0, 0.6)) {
    dat <- escalc(measure = "GEN", yi = yi, vi = vi, data = datasets[[name]])
    agg <- aggregate(dat, cluster = cluster, rho = rho, struct = "CS")
    aggregates[[sprintf("%s-rho%s", name, rho)]] <- list(
      dataset = name, rho = rho, cluster = agg$cluster, yi = c(agg$yi), vi = c(agg$vi)
    )
  }
}

data_out <- lapply(datasets, function(d) list(
  yi = d$yi, vi = d$vi, cluster = d$cluster, es_id = d$es_id,
  mod = if (is.numeric(d$mod)) d$mod else as.character(d$mod)
))

out <- list(
  generated_by = "tests/reference/multilevel.R",
  metafor = as.character(packageVersion("metafor")),
  clubSandwich = as.character(packageVersion("clubSandwich")),
  data = data_out, cases = unname(cases), one_per_study = one_per_study,
  aggregate = unname(aggregates)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, matrix = "rowmajor"),
           "tests/reference/multilevel.json")
