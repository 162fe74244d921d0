# Reference values for metaally's contrast-based network meta-analysis.
#
#   Rscript tests/reference/network.R     (from the repository root)
#
# writes tests/reference/network.json, read by tests/test_example_senn2013.py,
# tests/test_example_hasselblad1998.py and tests/test_network.py.  metafor 3.8 and
# clubSandwich on two published networks from metadat, following the examples in
# their help pages (?dat.senn2013, ?dat.hasselblad1998):
#   senn2013        mean differences in HbA1c (escalc "MD"), 26 studies, 10 treatments,
#                   one three-arm study; reference "placebo"
#   hasselblad1998  log odds ratios of smoking cessation (escalc "OR"), 24 studies,
#                   4 treatments, two three-arm studies; reference "no_contact"
# Each row is treat1 vs treat2 (to.wide: treat2 is the study's reference arm); rows of a
# study sharing treat2 share its sampling error: Cov = sd2^2 / n2 (MD) or
# 1 / x2 + 1 / (n2 - x2) (OR, cells + 1/2 when escalc added 1/2 to that row).
# Model: rma.mv(yi, V, mods = contrast matrix - 1, random = ~ comp | study, rho = 1/2).
# Numbers are written with 15 significant digits (jsonlite digits = NA) and re-read.
# Variants: senn2013 plus one all-zero contrast row (a study comparing metformin with
# itself); hasselblad1998 with study 1's row entered twice (same comparison, correlated
# sampling errors).  Also: P-scores (Ruecker & Schwarzer 2015) from the estimates and
# their covariance, the design-by-treatment interaction Wald test (Higgins et al. 2012),
# side-splitting (Dias et al. 2010; the side of the alphabetically later treatment), and
# CR2 cluster-robust tests (clubSandwich).
suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})

ctrl <- list(optimizer = "nlminb", rel.tol = 1e-12,
             iter.max = 10000, eval.max = 10000)
ctrl2 <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 100000)

num <- function(x) as.numeric(unname(x))

# ---- data ------------------------------------------------------------------
senn <- to.wide(dat.senn2013, study = "study", grp = "treatment", ref = "placebo",
                grpvars = c("ni", "mi", "sdi"))
senn <- escalc(measure = "MD", m1i = mi.1, sd1i = sdi.1, n1i = ni.1,
               m2i = mi.2, sd2i = sdi.2, n2i = ni.2, data = senn)
senn <- senn[order(senn$study, senn$id), ]
senn_cov <- senn$sdi.2^2 / senn$ni.2

hass <- to.wide(dat.hasselblad1998, study = "study", grp = "trt", ref = "no_contact",
                grpvars = c("xi", "ni"))
hass <- escalc(measure = "OR", ai = xi.1, n1i = ni.1, ci = xi.2, n2i = ni.2, data = hass)
hass <- hass[order(hass$study, hass$id), ]
zero <- with(hass, xi.1 == 0 | xi.2 == 0 | xi.1 == ni.1 | xi.2 == ni.2)
add <- ifelse(zero, 0.5, 0)
hass_cov <- 1 / (hass$xi.2 + add) + 1 / (hass$ni.2 - hass$xi.2 + add)

build_v <- function(study, vi, shared) {
  V <- diag(vi)
  for (s in unique(study)) {
    rows <- which(study == s)
    if (length(rows) > 1) {
      for (a in rows) for (b in rows) if (a != b) V[a, b] <- shared[a]
    }
  }
  V
}

networks <- list(
  senn2013 = list(study = as.character(senn$study), treat1 = senn$treatment.1,
                  treat2 = senn$treatment.2, yi = num(senn$yi),
                  V = build_v(senn$study, num(senn$vi), senn_cov), reference = "placebo"),
  hasselblad1998 = list(study = as.character(hass$study), treat1 = hass$trt.1,
                        treat2 = hass$trt.2, yi = num(hass$yi),
                        V = build_v(hass$study, num(hass$vi), hass_cov),
                        reference = "no_contact")
)
stopifnot(all(networks$hasselblad1998$V[networks$hasselblad1998$V != 0] > 0))

# variant 1: an all-zero contrast row (informs tau^2 only)
n0 <- networks$senn2013
k <- length(n0$yi)
V0 <- matrix(0, k + 1, k + 1); V0[1:k, 1:k] <- n0$V; V0[k + 1, k + 1] <- 0.04
networks$senn2013_selfrow <- list(
  study = c(n0$study, "Self (fictional)"), treat1 = c(n0$treat1, "metformin"),
  treat2 = c(n0$treat2, "metformin"), yi = c(n0$yi, 0.3), V = V0, reference = "placebo")

# variant 2: study 1's row entered twice (same comparison within a study)
n1 <- networks$hasselblad1998
k <- length(n1$yi)
idx <- c(1, seq_len(k))
V1 <- n1$V[idx, idx]
V1[1, 2] <- V1[2, 1] <- 0.5 * n1$V[1, 1]
V1[1, 1] <- n1$V[1, 1] * 1.2
networks$hasselblad1998_duplicate <- list(
  study = n1$study[idx], treat1 = n1$treat1[idx], treat2 = n1$treat2[idx],
  yi = c(n1$yi[1] + 0.1, n1$yi), V = V1, reference = "no_contact")

# ---- helpers ---------------------------------------------------------------
contrast_matrix <- function(net, treatments) {
  X <- sapply(treatments, function(t) (net$treat1 == t) - (net$treat2 == t))
  matrix(X, nrow = length(net$yi), dimnames = list(NULL, treatments))
}

# nlminb first (optim where nlminb reports non-convergence at the boundary tau^2 = 0);
# then tau^2 is polished by Fisher scoring on the exact REML score (dense matrices,
# P = W - W X (X'WX)^-1 X'W with W = (V + tau^2 R)^-1):
#   score = -1/2 tr(P R) + 1/2 y'P R P y,  information = 1/2 tr(P R P R),
# until |score| < 1e-13 x information x tau^2, and the model refitted with tau^2 fixed there.
# (ML: the score's trace term uses W in place of P.)
fit_nma <- function(yi, V, X, study, comp, ctrl, btt = NULL, method = "REML") {
  fit <- function(ct, tau2 = NA) {
    rma.mv(yi, V, mods = ~ X - 1, random = ~ comp | study, rho = 1 / 2, tau2 = tau2,
           method = method, control = ct, btt = btt)
  }
  res <- tryCatch(fit(ctrl), error = function(e) fit(ctrl2))
  R <- outer(study, study, "==") * ifelse(outer(comp, comp, "=="), 1, 1 / 2)
  tau2 <- res$tau2
  for (it in 1:200) {
    W <- solve(V + tau2 * R)
    P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
    PR <- P %*% R
    TR <- if (method == "REML") PR else W %*% R
    score <- -0.5 * sum(diag(TR)) + 0.5 * num(t(yi) %*% PR %*% P %*% yi)
    info <- 0.5 * sum(TR * t(TR))
    if (tau2 <= 0 && score <= 0) { tau2 <- 0; break }
    step <- score / info
    tau2 <- max(tau2 + step, 0)
    if (abs(step) < 1e-14 * max(tau2, 1e-8)) break
  }
  stopifnot(abs(tau2 - res$tau2) < 1e-5 * max(res$tau2, 1e-6))
  fit(ctrl, tau2 = tau2)
}

pscores <- function(b, vb, higher) {
  n <- length(b)
  p <- numeric(n)
  for (i in seq_len(n)) {
    s <- 0
    for (j in seq_len(n)) if (j != i) {
      se <- sqrt(vb[i, i] + vb[j, j] - 2 * vb[i, j])
      z <- (b[i] - b[j]) / se
      s <- s + if (higher) pnorm(z) else pnorm(-z)
    }
    p[i] <- s / (n - 1)
  }
  p
}

# design-by-treatment interaction columns: one parameter per (design, treatment other than
# the design's first treatment in alphabetical order); extra columns = those that raise
# the rank of the consistency design (taken in order, by QR)
design_columns <- function(net) {
  designs <- tapply(c(net$treat1, net$treat2), c(net$study, net$study),
                    function(x) paste(sort(unique(x)), collapse = ":"))
  d <- designs[net$study]
  cols <- list()
  for (des in unique(d)) {
    trts <- strsplit(des, ":")[[1]]
    for (t in trts[-1]) {
      cols[[paste(des, t, sep = "|")]] <- ifelse(d == des, (net$treat1 == t) - (net$treat2 == t), 0)
    }
  }
  do.call(cbind, cols)
}

extra_columns <- function(X, Z) {
  keep <- c()
  cur <- X
  r <- qr(cur)$rank
  for (j in seq_len(ncol(Z))) {
    cand <- cbind(cur, Z[, j])
    if (qr(cand)$rank > r) { cur <- cand; r <- r + 1; keep <- c(keep, j) }
  }
  Z[, keep, drop = FALSE]
}

out <- list()
for (name in names(networks)) {
  net <- networks[[name]]
  trts <- sort(unique(c(net$treat1, net$treat2)))
  others <- setdiff(trts, net$reference)
  X <- contrast_matrix(net, others)
  comp <- paste(net$treat1, net$treat2, sep = "-")
  study <- net$study
  res <- fit_nma(net$yi, net$V, X, net$study, comp, ctrl)
  res2 <- fit_nma(net$yi, net$V, X, net$study, comp, ctrl2)
  # two optimizers, both polished, agree
  stopifnot(abs(res$tau2 - res2$tau2) < 1e-12 * max(res$tau2, 1e-8))
  b <- c(0, num(coef(res)))
  vb <- matrix(0, length(b), length(b)); vb[-1, -1] <- vcov(res)
  names_all <- c(net$reference, others)
  entry <- list(
    study = net$study, treat1 = net$treat1, treat2 = net$treat2, yi = net$yi,
    V = net$V, reference = net$reference, treatments = others,
    beta = num(coef(res)), se = num(res$se), vcov = unname(vcov(res)),
    tau2 = num(res$tau2), loglik = num(logLik(res)),
    QE = num(res$QE), QE_df = res$k - res$p, QM = num(res$QM),
    pscore_names = names_all,
    pscore_higher = pscores(b, vb, TRUE), pscore_lower = pscores(b, vb, FALSE)
  )
  if (!grepl("_", name)) {
    ml <- fit_nma(net$yi, net$V, X, net$study, comp, ctrl, method = "ML")
    entry$ml <- list(beta = num(coef(ml)), se = num(ml$se), tau2 = num(ml$tau2),
                     loglik = num(logLik(ml)))
    # CR2 (clubSandwich) clustered by study
    ct <- coef_test(res, vcov = "CR2", cluster = net$study, test = "Satterthwaite")
    entry$cr2_se <- num(ct$SE)
    entry$cr2_df <- num(ct$df_Satt)
    entry$cr2_p <- num(ct$p_Satt)
    # design-by-treatment interaction (Higgins et al. 2012): Wald test of the extra columns
    Z <- extra_columns(X, design_columns(net))
    if (ncol(Z) > 0) {
      XI <- cbind(X, Z)
      inc <- fit_nma(net$yi, net$V, XI, study, comp, ctrl, btt = (ncol(X) + 1):ncol(XI))
      entry$dbt <- list(Q = num(inc$QM), df = ncol(Z), pvalue = num(inc$QMp),
                        tau2 = num(inc$tau2))
    }
    # side-splitting: for each pair (A, B), A < B alphabetically, observed together in a
    # study, the B arm of every study holding both gets its own shift delta
    splits <- list()
    for (a in trts) for (bb in trts) if (a < bb) {
      both <- tapply(c(net$treat1, net$treat2), c(net$study, net$study),
                     function(x) all(c(a, bb) %in% x))
      rows <- both[net$study]
      if (!any(rows)) next
      s <- ifelse(rows, (net$treat1 == bb) - (net$treat2 == bb), 0)
      XS <- cbind(X, s)
      if (qr(XS)$rank <= ncol(X)) next
      fs <- fit_nma(net$yi, net$V, XS, study, comp, ctrl)
      cvec <- (c(others, "s") == bb) - (c(others, "s") == a)   # indirect: d_B - d_A
      dvec <- cvec + c(rep(0, length(others)), 1)              # direct = indirect + delta
      vs <- vcov(fs)
      bs <- num(coef(fs))
      splits[[length(splits) + 1]] <- list(
        treat1 = bb, treat2 = a, direct = sum(dvec * bs),
        direct_se = sqrt(num(t(dvec) %*% vs %*% dvec)),
        indirect = sum(cvec * bs), indirect_se = sqrt(num(t(cvec) %*% vs %*% cvec)),
        difference = bs[length(bs)], difference_se = sqrt(vs[length(bs), length(bs)]),
        pvalue = num(fs$pval[length(bs)]), tau2 = num(fs$tau2))
    }
    entry$splits <- splits
  }
  out[[name]] <- entry
}
# arm-level data of senn2013 (for the arm_contrasts helper: to.wide + escalc + shared arm)
out$senn2013$arms <- list(study = as.character(dat.senn2013$study),
                          treatment = dat.senn2013$treatment, n = dat.senn2013$ni,
                          mean = dat.senn2013$mi, sd = dat.senn2013$sdi)

versions <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                 clubSandwich = as.character(packageVersion("clubSandwich")),
                 metadat = as.character(packageVersion("metadat")))
path <- "tests/reference/network.json"
write_json(list(generated_by = "tests/reference/network.R", versions = versions, networks = out),
           path, auto_unbox = TRUE, digits = NA, na = "null", matrix = "rowmajor", pretty = TRUE)
back <- fromJSON(path)
stopifnot(isTRUE(all.equal(back$networks$senn2013$beta, out$senn2013$beta, tolerance = 1e-14)))
