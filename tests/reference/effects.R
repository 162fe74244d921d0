# Reference values for metaally.effects: metafor's escalc(measure = "SMD") on the same inputs.
#
# Reads the inputs of every converted effect from results/effects.csv (metric, value_used,
# n1, n2 of the between-groups rows), converts f2 to d = 2 * sqrt(f2) as the codebook says,
# and lets escalc compute Hedges' g and its variance:
#   yi = cmi * d,  vi = 1/n1 + 1/n2 + yi^2 / (2 * (n1 + n2))
# metafor 3.8 uses the exact correction cmi = exp(lgamma(m/2) - log(sqrt(m/2)) - lgamma((m-1)/2)),
# m = n1 + n2 - 2; metaally uses Hedges' approximation J = 1 - 3/(4m - 1), as issue 2 specifies.
#
# Run from the repository root:  Rscript tests/reference/effects.R
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

eff <- read.csv("results/effects.csv", stringsAsFactors = FALSE)
eff <- eff[!is.na(eff$yi), ]   # the R2 association has no yi
d <- ifelse(eff$metric == "f2", 2 * sqrt(eff$value_used), eff$value_used)
es <- escalc(measure = "SMD", di = d, n1i = eff$n1, n2i = eff$n2)

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  es_id = eff$es_id,
  yi = as.numeric(es$yi),
  vi = as.numeric(es$vi)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/effects.json")
