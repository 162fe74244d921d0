# Reference values for metaally.selection_model: metafor 3.8 selmodel(), every type, with and
# without moderators, on published examples (the data sets of metafor's help(selmodel) examples,
# from metadat: Hackshaw et al. 1998, Cohen 1981, Baskerville et al. 2012, Hahn et al. 2001) and on
# generated data.  Run from the repository root:  Rscript tests/reference/selmodel.R
#
# Convergence (DESIGN §5): metafor's defaults (optim BFGS, integrate rel.tol 1.2e-4) move the
# results by more than 1e-4; here nlminb with rel.tol 1e-12, integration rel.tol 1e-12 and a
# Richardson Hessian with r = 8.  Every fit is repeated with a second optimizer (nlm, gradtol
# 1e-10; optim's BFGS stops with an error on the beta type), and its results are stored too (`second_optimizer`), with the largest relative differences of
# the estimates (`crosscheck`) and of the SEs (`crosscheck_se`).  Where a delta is at its bound
# the likelihood is flat in it, the two optimizers stop at different points and metafor's SEs
# come from a Hessian taken across the bound; the tests then compare the estimates only.
suppressMessages({library(metafor); library(jsonlite)})
# The cases run in parts, in parallel (the continuous types take minutes per fit in R):
#   for p in hackshaw published gen_a gen_b gen_c gen_d gen_e; do Rscript tests/reference/selmodel.R $p & done
# each writes tests/reference/.selmodel_<part>.json after every case; then
#   Rscript tests/reference/selmodel.R merge
# writes tests/reference/selmodel.json (and removes the part files).
part <- commandArgs(trailingOnly = TRUE)[1]
stopifnot(part %in% c("hackshaw", "published", "gen_a", "gen_b", "gen_c", "gen_d", "gen_e", "merge"))
stopifnot(packageVersion("metafor") >= "3.8")

int_ctrl <- list(rel.tol = 1e-12, subdivisions = 2000L)
ctrl_a <- list(optimizer = "nlminb", rel.tol = 1e-12, intCtrl = int_ctrl, hessianCtrl = list(r = 8))
ctrl_b <- list(optimizer = "nlm", gradtol = 1e-10, steptol = 1e-12, iterlim = 1e4,
               intCtrl = int_ctrl, hessianCtrl = list(r = 8))

num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)

fit_one <- function(res, type, alternative, steps, ctrl) {
  args <- list(res, type = type, alternative = alternative, control = ctrl)
  if (type == "stepfun" && is.null(steps)) steps <- c(0.025, 1)   # the 3PSM
  if (!is.null(steps)) args$steps <- steps
  if (identical(ctrl$optimizer, "nlminb")) {
    # nlminb reports false convergence when rel.tol is below what the likelihood's rounding
    # allows; take the tightest tolerance it accepts
    for (tol in c(1e-12, 1e-11, 1e-10, 1e-9, 1e-8)) {
      args$control$rel.tol <- tol
      sel <- try(suppressWarnings(do.call(selmodel, args)), silent = TRUE)
      if (!inherits(sel, "try-error")) return(sel)
    }
    stop(sel)
  }
  suppressWarnings(do.call(selmodel, args))
}

summarise <- function(sel) {
  list(beta = num(sel$beta), se = num(sel$se), tau2 = num(sel$tau2), se_tau2 = num(sel$se.tau2),
       delta = num(sel$delta), se_delta = num(sel$se.delta), lrt = num(sel$LRT),
       lrt_df = num(sel$LRTdf), lrt_pvalue = num(sel$LRTp), lrt_tau2 = num(sel$LRT.tau2),
       loglik = num(sel$ll), loglik0 = num(sel$ll0))
}

rel_diff <- function(a, b, fields) {
  a <- unlist(a[fields]); b <- unlist(b[fields])
  ok <- !is.na(a) & !is.na(b)
  if (!any(ok)) return(NA_real_)
  max(abs(a[ok] - b[ok]) / pmax(abs(b[ok]), 1e-8))
}
estimates <- c("beta", "tau2", "delta", "lrt", "loglik")
ses <- c("se", "se_tau2", "se_delta")

cases <- list()
add_case <- function(name, yi, vi, mods = NULL, method = "ML", type, alternative = "greater",
                     steps = NULL, source) {
  res <- if (is.null(mods)) rma(yi, vi, method = method) else rma(yi, vi, mods = mods, method = method)
  a <- try(summarise(fit_one(res, type, alternative, steps, ctrl_a)), silent = TRUE)
  if (inherits(a, "try-error")) { cat(name, "FAILED:", a); return(invisible()) }
  b <- try(summarise(fit_one(res, type, alternative, steps, ctrl_b)), silent = TRUE)
  if (inherits(b, "try-error")) b <- lapply(a, function(x) NA_real_)   # crosscheck NaN
  X <- if (is.null(mods)) NULL else unname(as.matrix(mods))
  cases[[name]] <<- list(name = name, source = source, yi = as.numeric(yi), vi = as.numeric(vi),
                         mods = X, method = method, type = type, alternative = alternative,
                         steps = if (is.null(steps)) NA else steps,
                         expected = a, second_optimizer = b,
                         crosscheck = rel_diff(b, a, estimates),
                         crosscheck_se = rel_diff(b, a, ses))
  write_part(file.path("tests", "reference", paste0(".selmodel_", part, ".json")), cases)
  cat(sprintf("%-32s crosscheck %.2e (SEs %.2e)  estimate %.6f\n", name,
              rel_diff(b, a, estimates), rel_diff(b, a, ses), a$beta[1]))
}

types <- c("stepfun", "beta", "halfnorm", "negexp", "logistic", "power")
write_part <- function(path, cases) {
  json <- toJSON(unname(cases), digits = I(17), auto_unbox = TRUE, null = "null", na = "null",
                 pretty = TRUE, matrix = "rowmajor")
  writeLines(json, path)
}

# Hackshaw et al. (1998): lung cancer and passive smoking (log OR); metafor's help(selmodel)
h <- dat.hackshaw1998
if (part == "hackshaw") {
for (t in types) add_case(paste0("hackshaw1998_", t), h$yi, h$vi, type = t,
                          source = "dat.hackshaw1998, help(selmodel)")
}
if (part == "published") {
for (t in types[3:4]) add_case(paste0("hackshaw1998_", t, "_less"), h$yi, h$vi, type = t,
                               alternative = "less", source = "dat.hackshaw1998, help(selmodel)")
add_case("hackshaw1998_stepfun_reml_input", h$yi, h$vi, method = "REML", type = "stepfun",
         source = "dat.hackshaw1998 (REML input: selmodel refits by ML)")

}

# power with a moderator where its delta is interior (in the generated data it is at 0)
if (part == "gen_e") {
add_case("hackshaw1998_power_year", h$yi, h$vi, mods = cbind(year = h$year - 1990),
         type = "power", source = "dat.hackshaw1998 (moderator: publication year - 1990)")
}
if (part == "published") {
# Cohen (1981): validity of student ratings (Fisher z); help(selmodel), steps .025/.10/.50/1
co <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.cohen1981)
add_case("cohen1981_stepfun_4", co$yi, co$vi, type = "stepfun", steps = c(.025, .10, .50, 1),
         source = "dat.cohen1981, help(selmodel)")

# Baskerville et al. (2012): practice facilitation (SMD); help(selmodel) beta, with and without
# the moderator blind
b <- dat.baskerville2012
add_case("baskerville2012_beta", b$smd, b$se^2, type = "beta",
         source = "dat.baskerville2012, help(selmodel)")
blind <- cbind(blind = as.numeric(b$blind))
add_case("baskerville2012_beta_blind", b$smd, b$se^2, mods = blind, type = "beta",
         source = "dat.baskerville2012, help(selmodel)")
add_case("baskerville2012_stepfun_blind", b$smd, b$se^2, mods = blind, type = "stepfun",
         steps = c(0.025, 1), source = "dat.baskerville2012")

# Hahn et al. (2001): equal-effects model (tau^2 = 0 fixed), beta; help(selmodel)
ha <- escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = dat.hahn2001,
             drop00 = TRUE)
ha <- ha[!is.na(ha$yi), ]
add_case("hahn2001_beta_fe", ha$yi, ha$vi, method = "FE", type = "beta",
         source = "dat.hahn2001, help(selmodel)")
}

# generated data: k = 60 effects with a continuous and a binary moderator, selected on p
set.seed(20261204)
n <- 400
x <- rnorm(n); g <- rbinom(n, 1, 0.4)
vi <- (4 / rpois(n, 60)) * runif(n, 0.5, 2)
yi <- 0.2 + 0.1 * x - 0.15 * g + rnorm(n, 0, sqrt(0.04)) + rnorm(n, 0, sqrt(vi))
p <- pnorm(yi / sqrt(vi), lower.tail = FALSE)
keep <- which(runif(n) < ifelse(p < 0.025, 1, 0.3))[1:60]
gm <- cbind(x = x[keep], g = g[keep])
gen_types <- list(gen_a = c("stepfun", "beta"), gen_b = c("halfnorm", "negexp"),
                  gen_c = c("logistic"), gen_d = c("power"))
if (part %in% names(gen_types)) {
for (t in gen_types[[part]]) {
  add_case(paste0("generated_", t, "_mods"), yi[keep], vi[keep], mods = gm, type = t,
           source = "generated")
}
}
if (part == "gen_c") {
add_case("generated_stepfun_3steps", yi[keep], vi[keep], type = "stepfun",
         steps = c(0.025, 0.5, 1), source = "generated")
add_case("generated_stepfun_two_sided", yi[keep], vi[keep], type = "stepfun",
         alternative = "two.sided", steps = c(0.05, 1), source = "generated")
add_case("generated_negexp_threshold", yi[keep], vi[keep], type = "negexp", steps = 0.05,
         source = "generated")
}

if (part != "merge") {
  write_part(file.path("tests", "reference", paste0(".selmodel_", part, ".json")), cases)
  quit(save = "no")
}
parts <- c("hackshaw", "published", "gen_a", "gen_b", "gen_c", "gen_d", "gen_e")
for (p in parts) {
  f <- file.path("tests", "reference", paste0(".selmodel_", p, ".json"))
  cases <- c(cases, fromJSON(f, simplifyVector = FALSE))
}
cases <- cases[!duplicated(vapply(cases, function(x) x$name, ""))]

out <- "tests/reference/selmodel.json"
json <- toJSON(list(metafor = as.character(packageVersion("metafor")), cases = unname(cases)),
               digits = I(17), auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE,
               matrix = "rowmajor")
writeLines(json, out)
back <- fromJSON(out, simplifyVector = FALSE)
stopifnot(identical(length(back$cases), length(cases)))
unlink(file.path("tests", "reference", paste0(".selmodel_", parts, ".json")))
cat("wrote", out, "\n")
