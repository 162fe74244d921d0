# Reference values for tests/test_living_update_e2e.py: a living update of Table 2 with one new
# study of each CSV metric (means, g, d with a CI, F, p, chi2, or, counts, prepost, medians).
#
# "studies" holds each study's cells as a researcher enters them in data/table2.csv and the yi and
# vi metafor 3.8's escalc gives after the conversion data/README.md documents for the metric (the
# conversion to t, d, log OR or mean/SD is written out here; escalc does the rest).  Signs: a
# positive yi means the outcome moved in the row's `direction` in the intervention arm; effects
# from group data (means, counts, prepost, medians, or) are negated when `direction` is lower.
#
# Run from the repository root:  Rscript tests/reference/e2e_update.R
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

# jsonlite writes at most 15 significant digits: yi and vi are written verbatim with 17
num17 <- function(x) {
  x <- as.numeric(x)
  stopifnot(length(x) == 1, is.finite(x))
  structure(sprintf("%.17g", x), class = "json")
}
z975 <- qnorm(0.975)
# metafor's exact small-sample correction J(m) (Hedges 1981), m = n1 + n2 - 2
cmi <- function(m) exp(lgamma(m / 2) - log(sqrt(m / 2)) - lgamma((m - 1) / 2))
# Luo et al. (2018) mean and Wan et al. (2014) SD from the median and quartiles (n > 0)
from_quartiles <- function(med, q1, q3, n) {
  w <- 0.7 + 0.39 / n
  eta <- 2 * qnorm((0.75 * n - 0.125) / (n + 0.25))
  c(w * (q1 + q3) / 2 + (1 - w) * med, (q3 - q1) / eta)
}

studies <- list()
add <- function(cells, es, sign = 1) {
  studies[[length(studies) + 1]] <<- list(cells = cells, yi = num17(sign * es$yi),
                                          vi = num17(es$vi))
}

# means (targets all-inclusivity): escalc SMD from means and SDs
add(list(metric = "means", components = "all_inclusivity", technique = "workshop",
         outcome_component = "all_inclusivity", direction = "higher",
         mean1 = 5.12, sd1 = 1.04, mean2 = 4.71, sd2 = 1.10, n1 = 62, n2 = 64),
    escalc("SMD", m1i = 5.12, sd1i = 1.04, n1i = 62, m2i = 4.71, sd2i = 1.10, n2i = 64))
# g as reported with a 95% CI: no second correction, vi = SE^2 from the CI
add(list(metric = "g", components = "awareness", technique = "video",
         outcome_component = "awareness", direction = "higher",
         value = 0.31, ci_low = -0.05, ci_high = 0.67, n1 = 60, n2 = 58),
    list(yi = 0.31, vi = ((0.67 - -0.05) / (2 * z975))^2))
# d with a 95% CI: g = J d, vi = (J SE)^2
add(list(metric = "d", components = "action_orientation", technique = "testimonials",
         outcome_component = "action_orientation", direction = "higher",
         value = 0.45, ci_low = 0.08, ci_high = 0.82, n1 = 55, n2 = 57),
    list(yi = cmi(110) * 0.45, vi = (cmi(110) * (0.82 - 0.08) / (2 * z975))^2))
# F(1, df) with sign +: t = sqrt(F)
add(list(metric = "F", components = "awareness", technique = "podcast",
         outcome_component = "awareness", direction = "higher",
         value = 5.3, sign = "+", n1 = 40, n2 = 44),
    escalc("SMD", ti = sqrt(5.3), n1i = 40, n2i = 44))
# two-sided p with sign -: t = -qt(1 - p/2, n1 + n2 - 2)
add(list(metric = "p", components = "authentic_motivation", technique = "reading_disadvantage",
         outcome_component = "authentic_motivation", direction = "higher",
         value = 0.04, sign = "-", n1 = 33, n2 = 35),
    escalc("SMD", ti = -qt(1 - 0.04 / 2, 33 + 35 - 2), n1i = 33, n2i = 35))
# chi2(1) with sign +: r = sqrt(chi2 / n), d = 2 r / sqrt(1 - r^2), then escalc SMD from d
add(list(metric = "chi2", components = "action_orientation", technique = "leader_story",
         outcome_component = "action_orientation", direction = "higher",
         value = 4.1, sign = "+", n1 = 90, n2 = 95),
    { r <- sqrt(4.1 / 185); escalc("SMD", di = 2 * r / sqrt(1 - r^2), n1i = 90, n2i = 95) })
# odds ratio with a 95% CI: OR2DL, d = ln OR sqrt(3) / pi, vi = 3 / pi^2 SE(ln OR)^2
add(list(metric = "or", components = "action_orientation", technique = "documentary",
         outcome_component = "action_orientation", direction = "higher",
         value = 1.9, ci_low = 1.1, ci_high = 3.3, n1 = 75, n2 = 77),
    list(yi = log(1.9) * sqrt(3) / pi, vi = 3 / pi^2 * ((log(3.3) - log(1.1)) / (2 * z975))^2))
# 2x2 counts on an outcome where lower is the effect: OR2DL, negated
add(list(metric = "counts", components = "awareness", technique = "infographic",
         outcome_component = "other", direction = "lower",
         events1 = 12, events2 = 21, n1 = 50, n2 = 52),
    escalc("OR2DL", ai = 12, n1i = 50, ci = 21, n2i = 52), sign = -1)
# pre-post means, r_prepost blank (0.5 assumed): difference of the arms' SMCR (Morris 2008)
add(list(metric = "prepost", components = "all_inclusivity", technique = "workshop",
         outcome_component = "all_inclusivity", direction = "higher",
         mean_pre1 = 3.2, mean_post1 = 3.8, sd_pre1 = 0.9,
         mean_pre2 = 3.1, mean_post2 = 3.3, sd_pre2 = 0.95, n1 = 41, n2 = 39),
    { e1 <- escalc("SMCR", m1i = 3.8, m2i = 3.2, sd1i = 0.9, ni = 41, ri = 0.5)
      e2 <- escalc("SMCR", m1i = 3.3, m2i = 3.1, sd1i = 0.95, ni = 39, ri = 0.5)
      list(yi = e1$yi - e2$yi, vi = e1$vi + e2$vi) })
# medians with quartiles: Luo et al. (2018) means, Wan et al. (2014) SDs, then escalc SMD
add(list(metric = "medians", components = "awareness", technique = "expert_video",
         outcome_component = "awareness", direction = "higher",
         median1 = 22, q1_1 = 17, q3_1 = 28, median2 = 19, q1_2 = 15, q3_2 = 25, n1 = 48, n2 = 50),
    { a <- from_quartiles(22, 17, 28, 48); b <- from_quartiles(19, 15, 25, 50)
      escalc("SMD", m1i = a[1], sd1i = a[2], n1i = 48, m2i = b[1], sd2i = b[2], n2i = 50) })

out <- list(metafor_version = as.character(packageVersion("metafor")), studies = studies)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE),
           "tests/reference/e2e_update.json")
