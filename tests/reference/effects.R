# Reference values for metaally.effects: metafor's escalc(measure = "SMD") on Table 2's rows.
#
# Reads data/table2.csv (not our output), expands each reported range "a-b" into its two
# endpoints (range_policy = "endpoints"), splits n over the study's arms where per-arm sizes are
# not given (arms_policy = "stated"), converts f2 to d = 2 * sqrt(f2) as the codebook says, and
# lets escalc compute Hedges' g with its exact correction and its variance:
#   yi = cmi * d,  cmi = exp(lgamma(m/2) - log(sqrt(m/2)) - lgamma((m-1)/2)),  m = n1 + n2 - 2
#   vi = 1/n1 + 1/n2 + yi^2 / (2 * (n1 + n2))                              (vtype = "LS")
# es_id is <study_id>-NN numbered in file order, a range's endpoints consecutively.
#
# Run from the repository root:  Rscript tests/reference/effects.R
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

dat <- read.csv("data/table2.csv", stringsAsFactors = FALSE)
rows <- do.call(rbind, lapply(seq_len(nrow(dat)), function(i) {
  r <- dat[i, ]
  used <- if (!is.na(r$value)) r$value else c(r$value_low, r$value_high)
  data.frame(study_id = r$study_id, metric = r$metric, value_used = used,
             n1 = if (!is.na(r$n1)) r$n1 else r$n / r$arms,
             n2 = if (!is.na(r$n2)) r$n2 else r$n / r$arms)
}))
rows$es_id <- ave(rows$study_id, rows$study_id, FUN = function(s) {
  sprintf(paste0("%s-%0", max(2, nchar(length(s))), "d"), s, seq_along(s))
})
rows <- rows[rows$metric != "R2", ]
d <- ifelse(rows$metric == "f2", 2 * sqrt(rows$value_used), rows$value_used)
es <- escalc(measure = "SMD", di = d, n1i = rows$n1, n2i = rows$n2)

num17 <- function(x) structure(paste0("[", paste(sprintf("%.17g", x), collapse = ", "), "]"),
                               class = "json")
out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  es_id = rows$es_id,
  yi = num17(es$yi),
  vi = num17(es$vi)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE),
           "tests/reference/effects.json")
