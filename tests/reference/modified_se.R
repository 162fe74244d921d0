# Reference values for the small-study tests with the modified SE of an SMD,
# sqrt((n1 + n2)/(n1 n2)) (Pustejovsky & Rodgers 2019, Res Synth Methods 10(1):57-71):
# metafor 3.8 regtest(yi, sei = modified SE) (REML, z test), and PET/PEESE by lm with weights
# 1/sei^2.  Data: metadat dat.normand1999 (SMDs from means/SDs, escalc "SMD").
# Run from the repository root:  Rscript tests/reference/modified_se.R
suppressMessages({library(metafor); library(jsonlite)})
dat <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
              n2i = n2i, data = dat.normand1999)
sei_mod <- sqrt((dat$n1i + dat$n2i) / (dat$n1i * dat$n2i))
tight <- list(threshold = 1e-12, maxiter = 1e4)
eg <- regtest(rma(dat$yi, sei = sei_mod, control = tight), predictor = "sei")
pet <- summary(lm(dat$yi ~ sei_mod, weights = 1 / sei_mod^2))$coefficients
peese <- summary(lm(dat$yi ~ I(sei_mod^2), weights = 1 / sei_mod^2))$coefficients
eg_vi <- regtest(rma(dat$yi, dat$vi, control = tight), predictor = "sei")
out <- list(
  yi = as.numeric(dat$yi), vi = as.numeric(dat$vi), n1 = dat$n1i, n2 = dat$n2i,
  modified_se = sei_mod,
  egger = list(stat = eg$zval, pvalue = eg$pval, limit = eg$est, limit_ci_low = eg$ci.lb,
               limit_ci_high = eg$ci.ub),
  egger_vi = list(stat = eg_vi$zval, pvalue = eg_vi$pval, limit = eg_vi$est),
  pet = list(estimate = pet[1, 1], se = pet[1, 2], pvalue = pet[1, 4]),
  peese = list(estimate = peese[1, 1], se = peese[1, 2], pvalue = peese[1, 4]))
write_json(out, "tests/reference/modified_se.json", digits = I(17), auto_unbox = TRUE,
           pretty = TRUE)
