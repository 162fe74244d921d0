# A second review in metaally's studies schema, for `metaally report` (tests/test_cli_report.py).
# Bangert-Drowns, Hurley & Wilkinson (2004), Rev. Educ. Res. 74:29-58: 48 studies of
# writing-to-learn interventions versus conventional instruction, standardized mean differences
# (metadat dat.bangertdrowns2004: yi = Hedges' g, ni = total n).  The fixture enters Cohen's
# d = g / J(ni - 2) (J exact, Hedges 1981) with n = ni split over 2 arms, so metaally's effect
# step must give back escalc's SMD g and its "LS" variance; the reference also holds metafor's
# REML random-effects fit of those effects.
# Run: Rscript tests/reference/bangertdrowns2004_report.R
suppressMessages({library(metafor); library(metadat); library(jsonlite)})

dat <- dat.bangertdrowns2004
m <- dat$ni - 2
J <- exp(lgamma(m / 2) - 0.5 * log(m / 2) - lgamma((m - 1) / 2))
d <- dat$yi / J
first <- tolower(sub("[^A-Za-z].*$", "", dat$author))
ids <- make.unique(paste0(first, dat$year), sep = "_")
ids <- gsub("\\.", "_", ids)
csv <- data.frame(
  study_id = ids, ref = dat$id, citation = dat$author, year = dat$year, table_group = "",
  components = "awareness", intervention = "Writing-to-learn assignments in a course",
  technique = "reflection_writing", participants = paste0("Students (grade code ", dat$grade, ")"),
  n = dat$ni, arms = 2, comparison = "conventional instruction", comparator = "control",
  design = "between", outcome = paste("Academic achievement in", dat$subject), direction = "higher",
  outcome_component = "other", outcome_domain = "knowledge_awareness", timepoint = "post",
  role = "intervention_effect", metric = "d", value = formatC(d, digits = 17, format = "g"),
  value_low = "", value_high = "", peer_reviewed = "true",
  notes = "metadat dat.bangertdrowns2004; d = g / J; components and technique use the schema's vocabulary as placeholders",
  stringsAsFactors = FALSE)
write.csv(csv, "tests/reviews/bangertdrowns2004.csv", row.names = FALSE, quote = TRUE)

es <- escalc(measure = "SMD", di = d, n1i = dat$ni / 2, n2i = dat$ni / 2, vtype = "LS")
fit <- rma(es$yi, es$vi, method = "REML", control = list(threshold = 1e-12, maxiter = 10000))
out <- list(
  source = "metadat dat.bangertdrowns2004 (Bangert-Drowns et al. 2004); metafor escalc SMD from d, rma REML",
  study_id = ids, yi = c(es$yi), vi = c(es$vi), original_yi = dat$yi,
  estimate = c(fit$beta), se = fit$se, tau2 = fit$tau2, i2 = fit$I2, k = fit$k)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/bangertdrowns2004_report.json")
