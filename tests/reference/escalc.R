# Reference values for metaally.escalc and the CSV metrics of compute_effects: metafor 3.8's escalc.
#
# Part 1 ("cases"): every measure and variance type metaally.escalc implements, on generated
# inputs that include extreme group sizes (2 + 2 and 1e6), zero cells, negative t and
# correlations near -1 and 1.
# Part 2 ("rows"): one study of each CSV metric as a researcher would enter it, with the
# yi and vi that metafor gives after the documented conversion (the conversions to t, d or
# log OR are written out here; escalc does the rest).
#
# Run from the repository root:  Rscript tests/reference/escalc.R
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
set.seed(20261204)

# jsonlite writes at most 15 significant digits: yi and vi are written verbatim with 17
num17 <- function(x) {
  x <- as.numeric(x)
  stopifnot(all(is.finite(x)))
  structure(paste0("[", paste(sprintf("%.17g", x), collapse = ", "), "]"), class = "json")
}

cases <- list()
add_case <- function(measure, args, vtype = "LS", add = 1/2, to = "only0") {
  es <- do.call(escalc, c(list(measure = measure, vtype = vtype, add = add, to = to), args))
  cases[[length(cases) + 1]] <<- list(
    measure = measure, vtype = vtype, add = add, to = to, args = args,
    yi = num17(es$yi), vi = num17(es$vi)
  )
}

# --- two-group means: SMD, SMDH -----------------------------------------------------------
k <- 12
n1 <- c(2, 3, 5, 10, 1e6, 40, 2, 250, 17, 60, 8, 1e6)
n2 <- c(2, 2, 7, 12, 1e6, 35, 30, 300, 19, 55, 8, 999999)
m1 <- round(rnorm(k, 10, 3), 3)
m2 <- round(rnorm(k, 10, 3), 3)
sd1 <- round(runif(k, 0.5, 5), 3)
sd2 <- round(runif(k, 0.5, 5), 3)
means <- list(m1i = m1, sd1i = sd1, n1i = n1, m2i = m2, sd2i = sd2, n2i = n2)
for (vt in c("LS", "UB", "LS2", "AV")) add_case("SMD", means, vtype = vt)
for (vt in c("LS", "LS2")) add_case("SMDH", means, vtype = vt)

# --- SMD from d and from t (negative t, extreme n) ----------------------------------------
add_case("SMD", list(di = c(0.27, -1.3, 0, 4.5, 0.01, -0.6), n1i = c(2, 5, 20, 1e6, 193.5, 65.5),
                     n2i = c(2, 4, 25, 1e6, 193.5, 65.5)))
add_case("SMD", list(ti = c(-2.5, 3.1, 0, -12, 0.4, 40), n1i = c(2, 10, 30, 1e6, 3, 500),
                     n2i = c(3, 10, 28, 1e6, 2, 480)))
for (vt in c("UB", "LS2")) {
  add_case("SMD", list(ti = c(-2.5, 3.1, 0.7), n1i = c(2, 10, 1e6), n2i = c(3, 10, 1e6)), vtype = vt)
}

# --- pre-post: SMCR, SMCC ----------------------------------------------------------------
ni <- c(3, 4, 10, 25, 1e6, 60, 12, 200)
ri <- c(0.5, -0.9, 0, 0.99, 0.7, 0.3, -0.2, 0.85)
pre <- round(rnorm(8, 20, 4), 3)
post <- round(pre + rnorm(8, 1, 2), 3)
sdpre <- round(runif(8, 1, 6), 3)
sdpost <- round(runif(8, 1, 6), 3)
for (vt in c("LS", "LS2")) {
  add_case("SMCR", list(m1i = post, m2i = pre, sd1i = sdpre, ni = ni, ri = ri), vtype = vt)
  add_case("SMCC", list(m1i = post, m2i = pre, sd1i = sdpost, sd2i = sdpre, ni = ni, ri = ri),
           vtype = vt)
}

# --- 2x2 tables: OR2DL, OR2DN, PBIT (zero cells, extreme n) ------------------------------
ai <- c(0, 5, 12, 0, 300000, 1, 7, 20)
bi <- c(10, 0, 30, 8, 700000, 1, 13, 0)
ci <- c(3, 6, 0, 0, 250000, 1, 9, 0)
di <- c(7, 4, 40, 9, 750000, 1, 11, 15)
for (m in c("OR2DL", "OR2DN", "PBIT")) {
  add_case(m, list(ai = ai, bi = bi, ci = ci, di = di))
}
add_case("OR2DL", list(ai = ai, n1i = ai + bi, ci = ci, n2i = ci + di))
add_case("OR2DL", list(ai = ai, bi = bi, ci = ci, di = di), add = 1, to = "all")
add_case("PBIT", list(ai = ai, bi = bi, ci = ci, di = di), add = 1/2, to = "if0all")

# --- Part 2: one row per CSV metric ------------------------------------------------------
z975 <- qnorm(0.975)
cmi <- function(m) exp(lgamma(m / 2) - log(sqrt(m / 2)) - lgamma((m - 1) / 2))
smd_d <- function(d, n1, n2) escalc("SMD", di = d, n1i = n1, n2i = n2)
smd_t <- function(t, n1, n2) escalc("SMD", ti = t, n1i = n1, n2i = n2)
# mean/SD from a median (Luo et al. 2018 means; Wan et al. 2014 / Shi et al. 2020 SDs);
# xi(n) is Wan's exact expected range for n <= 50 (their Table 1), the approximation above
xi <- function(n) {
  if (n <= 50) integrate(function(x) 1 - pnorm(x)^n - pnorm(-x)^n, -Inf, Inf, rel.tol = 1e-13)$value
  else 2 * qnorm((n - 0.375) / (n + 0.25))
}
eta <- function(n) 2 * qnorm((0.75 * n - 0.125) / (n + 0.25))
from_median <- function(med, n, q1 = NA, q3 = NA, lo = NA, hi = NA) {
  if (!is.na(q1) && !is.na(lo)) {
    w1 <- 2.2 / (2.2 + n^0.75); w2 <- 0.7 - 0.72 / n^0.55
    w <- 1 / (1 + 0.07 * n^0.6)
    c(w1 * (lo + hi) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * med,
      w * (hi - lo) / (2 * qnorm((n - 0.375) / (n + 0.25))) + (1 - w) * (q3 - q1) / eta(n))
  } else if (!is.na(q1)) {
    w <- 0.7 + 0.39 / n
    c(w * (q1 + q3) / 2 + (1 - w) * med, (q3 - q1) / eta(n))
  } else {
    w <- 4 / (4 + n^0.75)
    c(w * (lo + hi) / 2 + (1 - w) * med, (hi - lo) / xi(n))
  }
}
# Hedges (2007), eqs. 15-16: d_T and its variance for a cluster-randomised two-group design
cluster <- function(es, n1, n2, icc, m) {
  N <- n1 + n2
  dt <- es$yi * sqrt(1 - 2 * (m - 1) * icc / (N - 2))
  vt <- N / (n1 * n2) * (1 + (m - 1) * icc) +
    dt^2 * ((N - 2) * (1 - icc)^2 + m * (N - 2 * m) * icc^2 + 2 * (N - 2 * m) * icc * (1 - icc)) /
    (2 * (N - 2) * ((N - 2) - 2 * (m - 1) * icc))
  list(yi = dt, vi = vt)
}

rows <- list()
add_row <- function(cells, es) {
  rows[[length(rows) + 1]] <<- list(cells = cells, yi = num17(es$yi), vi = num17(es$vi))
}
add_row(list(metric = "means", mean1 = 3.9, sd1 = 1.1, mean2 = 3.4, sd2 = 1.3, n1 = 48, n2 = 51),
        escalc("SMD", m1i = 3.9, sd1i = 1.1, n1i = 48, m2i = 3.4, sd2i = 1.3, n2i = 51))
add_row(list(metric = "means", direction = "lower", mean1 = 2.1, sd1 = 0.8, mean2 = 2.6, sd2 = 0.9,
             n1 = 2, n2 = 2),
        { es <- escalc("SMD", m1i = 2.1, sd1i = 0.8, n1i = 2, m2i = 2.6, sd2i = 0.9, n2i = 2)
          list(yi = -es$yi, vi = es$vi) })
add_row(list(metric = "g", value = 0.42, n1 = 30, n2 = 31),
        smd_d(0.42 / cmi(59), 30, 31))
add_row(list(metric = "d", value = 0.5, ci_low = 0.1, ci_high = 0.9, n1 = 50, n2 = 50),
        list(yi = cmi(98) * 0.5, vi = (cmi(98) * (0.9 - 0.1) / (2 * z975))^2))
add_row(list(metric = "d", value = -0.3, se = 0.2, n1 = 40, n2 = 45),
        list(yi = cmi(83) * -0.3, vi = (cmi(83) * 0.2)^2))
add_row(list(metric = "F", value = 6.25, sign = "+", n1 = 40, n2 = 42),
        smd_t(sqrt(6.25), 40, 42))
add_row(list(metric = "F", value = 4, sign = "-", n1 = 1e6, n2 = 1e6),
        smd_t(-sqrt(4), 1e6, 1e6))
add_row(list(metric = "p", value = 0.03, sign = "+", n1 = 25, n2 = 27),
        smd_t(qt(0.03 / 2, 50, lower.tail = FALSE), 25, 27))
add_row(list(metric = "p", value = 0.2, sign = "-", n1 = 60, n2 = 60),
        smd_t(-qt(0.2 / 2, 118, lower.tail = FALSE), 60, 60))
add_row(list(metric = "chi2", value = 5.2, sign = "+", n1 = 100, n2 = 100),
        { r <- sqrt(5.2 / 200); smd_d(2 * r / sqrt(1 - r^2), 100, 100) })
add_row(list(metric = "or", value = 2.5, ci_low = 1.2, ci_high = 5.2, n1 = 80, n2 = 80),
        list(yi = log(2.5) * sqrt(3) / pi,
             vi = ((log(5.2) - log(1.2)) / (2 * z975))^2 * 3 / pi^2))
add_row(list(metric = "or", value = 0.6, n1 = 70, n2 = 75),
        { d <- log(0.6) * sqrt(3) / pi; list(yi = d, vi = 1 / 70 + 1 / 75 + d^2 / (2 * 145)) })
add_row(list(metric = "counts", events1 = 18, events2 = 9, n1 = 40, n2 = 41),
        escalc("OR2DL", ai = 18, n1i = 40, ci = 9, n2i = 41))
add_row(list(metric = "counts", events1 = 12, events2 = 0, n1 = 30, n2 = 30),
        escalc("OR2DL", ai = 12, n1i = 30, ci = 0, n2i = 30))
add_row(list(metric = "prepost", mean_pre1 = 3.1, mean_post1 = 3.9, sd_pre1 = 0.9,
             mean_pre2 = 3.0, mean_post2 = 3.2, sd_pre2 = 1.0, n1 = 35, n2 = 33, r_prepost = 0.6),
        { e1 <- escalc("SMCR", m1i = 3.9, m2i = 3.1, sd1i = 0.9, ni = 35, ri = 0.6)
          e2 <- escalc("SMCR", m1i = 3.2, m2i = 3.0, sd1i = 1.0, ni = 33, ri = 0.6)
          list(yi = e1$yi - e2$yi, vi = e1$vi + e2$vi) })
add_row(list(metric = "prepost", mean_pre1 = 10, mean_post1 = 12.5, sd_pre1 = 4,
             mean_pre2 = 10.4, mean_post2 = 11, sd_pre2 = 3.5, n1 = 20, n2 = 22),
        { e1 <- escalc("SMCR", m1i = 12.5, m2i = 10, sd1i = 4, ni = 20, ri = 0.5)
          e2 <- escalc("SMCR", m1i = 11, m2i = 10.4, sd1i = 3.5, ni = 22, ri = 0.5)
          list(yi = e1$yi - e2$yi, vi = e1$vi + e2$vi) })
add_row(list(metric = "medians", median1 = 14, q1_1 = 10, q3_1 = 19, median2 = 11, q1_2 = 8,
             q3_2 = 15, n1 = 45, n2 = 47),
        { a <- from_median(14, 45, q1 = 10, q3 = 19); b <- from_median(11, 47, q1 = 8, q3 = 15)
          escalc("SMD", m1i = a[1], sd1i = a[2], n1i = 45, m2i = b[1], sd2i = b[2], n2i = 47) })
add_row(list(metric = "medians", median1 = 14, min1 = 3, max1 = 30, median2 = 11, min2 = 2,
             max2 = 27, n1 = 20, n2 = 60),
        { a <- from_median(14, 20, lo = 3, hi = 30); b <- from_median(11, 60, lo = 2, hi = 27)
          escalc("SMD", m1i = a[1], sd1i = a[2], n1i = 20, m2i = b[1], sd2i = b[2], n2i = 60) })
add_row(list(metric = "medians", median1 = 14, q1_1 = 10, q3_1 = 19, min1 = 3, max1 = 30,
             median2 = 11, q1_2 = 8, q3_2 = 15, min2 = 2, max2 = 27, n1 = 33, n2 = 35),
        { a <- from_median(14, 33, q1 = 10, q3 = 19, lo = 3, hi = 30)
          b <- from_median(11, 35, q1 = 8, q3 = 15, lo = 2, hi = 27)
          escalc("SMD", m1i = a[1], sd1i = a[2], n1i = 33, m2i = b[1], sd2i = b[2], n2i = 35) })
add_row(list(metric = "means", mean1 = 3.9, sd1 = 1.1, mean2 = 3.4, sd2 = 1.3, n1 = 120, n2 = 130,
             icc = 0.1, cluster_size = 25),
        cluster(escalc("SMD", m1i = 3.9, sd1i = 1.1, n1i = 120, m2i = 3.4, sd2i = 1.3, n2i = 130),
                120, 130, 0.1, 25))

out <- list(metafor_version = as.character(packageVersion("metafor")), cases = cases, rows = rows)
path <- "tests/reference/escalc.json"
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE), path)
back <- fromJSON(path)
es <- do.call(escalc, c(list(measure = "SMD"), means))
stopifnot(identical(back$cases$yi[[1]], as.numeric(es$yi)))
