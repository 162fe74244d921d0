# Set-up shared by the reference scripts that read the Table 2 analysis data
# (tests/reference/pooling.R, tests/reference/table2_diagnostics.R); sourced from the
# repository root.  Defines: rho, components, the optimiser controls, eff (results/effects.csv,
# rows with included == TRUE), parts (each effect's targeted components), che_model() and
# i2_multilevel().
suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})

rho <- 0.6
components <- c("awareness", "authentic_motivation", "action_orientation", "all_inclusivity")
ctrl <- list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000)   # rma.mv (nlminb)
ctrl_uni <- list(threshold = 1e-12, maxiter = 10000)                 # rma (Fisher scoring)

eff <- read.csv("results/effects.csv", stringsAsFactors = FALSE)
eff <- eff[as.logical(eff$included), ]
eff$study_id <- as.character(eff$study_id)
eff$es_id <- as.character(eff$es_id)
parts <- strsplit(eff$components, ";", fixed = TRUE)

# The CHE working model on d: V <- vcalc(vi, cluster = study_id, obs = es_id, rho),
# rma.mv(yi, V, random = ~ 1 | study_id/es_id, REML); mods/intercept as in rma.mv.
# nlminb at rel.tol 1e-10 first; where it reports no convergence (a flat REML surface),
# optim's BFGS with reltol 1e-15 (DESIGN.md section 5: a second optimizer, tight settings).
ctrl_optim <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 10000)
che_model <- function(d, mods = NULL, intercept = TRUE) {
  V <- vcalc(vi, cluster = study_id, obs = es_id, rho = rho, data = d)
  fit <- function(control) {
    if (is.null(mods)) {
      return(rma.mv(yi, V, random = ~ 1 | study_id / es_id, data = d, method = "REML",
                    control = control))
    }
    rma.mv(d$yi, V, mods = mods, intercept = intercept, random = ~ 1 | study_id / es_id,
           data = d, method = "REML", control = control)
  }
  tryCatch(fit(ctrl), error = function(e) fit(ctrl_optim))
}

# I^2 of a multilevel model (metafor FAQ, W = diag(1/vi)):
# 100 * sum(sigma2) / (sum(sigma2) + (k - p) / tr(P)),  P = W - W X (X'WX)^-1 X'W
i2_multilevel <- function(m) {
  W <- diag(1 / m$vi)
  X <- model.matrix(m)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  100 * sum(m$sigma2) / (sum(m$sigma2) + (m$k - m$p) / sum(diag(P)))
}
