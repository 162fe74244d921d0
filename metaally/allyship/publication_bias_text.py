"""The review's publication-bias paragraph, from results/publication_bias.csv
(analyses/publication_bias.py): structured facts, then sentences built from them.

``publication_bias_facts`` reads the table into plain values; ``publication_bias_markdown``
renders them (the summary writer calls it; nothing here parses text another module wrote).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaally.allyship.review import LABELS

__all__ = [
    "BiasFacts",
    "publication_bias_facts",
    "publication_bias_markdown",
]



@dataclass(frozen=True)
class BiasFacts:
    """One analysis (overall or a component) of the publication-bias table."""

    analysis: str
    k_studies: int
    too_few: bool
    selection: dict | None
    egger_modified: dict | None
    egger_vi: dict | None
    pet_peese_modified: dict | None
    trim_and_fill: dict | None


def publication_bias_facts(table: pd.DataFrame) -> list[BiasFacts]:
    """The rows of ``table`` grouped per analysis, as values (NaN for absent numbers)."""
    facts = []
    for analysis, rows in table.groupby("analysis", sort=False):
        def pick(method: str, se_type: str | None = None, rows=rows) -> dict | None:
            hit = rows[(rows["method"] == method)
                       & ((rows["se_type"] == se_type) if se_type else True)]
            if hit.empty or np.isnan(hit["estimate"].iloc[0]):
                return None
            return hit.iloc[0].to_dict()
        k = int(rows["k_studies"].iloc[0])
        facts.append(BiasFacts(
            analysis=str(analysis), k_studies=k,
            too_few=rows["note"].fillna("").str.contains("fewer than").any(),
            selection=pick("selection_3psm"), egger_modified=pick("egger", "modified"),
            egger_vi=pick("egger", "sqrt(vi)"), pet_peese_modified=pick("pet_peese", "modified"),
            trim_and_fill=pick("trim_and_fill")))
    return facts


def _ci(row: dict) -> str:
    return f"{row['estimate']:.2f} (95% CI {row['ci_low']:.2f} to {row['ci_high']:.2f})"


def publication_bias_markdown(table: pd.DataFrame, min_studies: int = 10) -> str:
    """The publication-bias section: one bullet per analysis, then the note on the SE used."""
    lines = ["## Publication bias", ""]
    for f in publication_bias_facts(table):
        label = ("all included studies" if f.analysis == "overall"
                 else LABELS.get(f.analysis, f.analysis).lower())
        if f.k_studies < 3:
            lines.append(f"- {label.capitalize()}: {f.k_studies} studies; no method applies.")
            continue
        parts = []
        if f.selection is not None:
            above = int(str(f.selection["k_per_interval"]).split(";")[-1])
            parts.append(f"3PSM selection model {_ci(f.selection)}, relative weight of "
                         f"non-significant results {f.selection['delta']:.2f} (LRT p = "
                         f"{f.selection['lrt_pvalue']:.3f}; {above} "
                         f"{'study' if above == 1 else 'studies'} with p > .025, on which "
                         "that weight rests)")
        if f.egger_modified is not None and f.egger_vi is not None:
            parts.append(f"Egger's test p = {f.egger_modified['pvalue']:.3f} with the modified "
                         f"SE (p = {f.egger_vi['pvalue']:.3f} with the usual SE)")
        if f.pet_peese_modified is not None:
            parts.append(f"PET-PEESE {_ci(f.pet_peese_modified)}")
        if f.trim_and_fill is not None:
            parts.append(f"trim-and-fill {_ci(f.trim_and_fill)} with "
                         f"{int(f.trim_and_fill['k0'])} imputed")
        text = f"- {label.capitalize()} ({f.k_studies} studies): " + "; ".join(parts) + "."
        if f.too_few:
            text += (f" With fewer than {min_studies} studies none of these can detect or "
                     "correct publication bias (Sterne et al. 2011, BMJ 343:d4002); they are "
                     "shown, not interpreted.")
        lines.append(text)
    lines += ["", "Egger's test and PET-PEESE use the modified standard error "
              "√((n1 + n2)/(n1·n2)) of the standardized mean difference: the usual SE contains "
              "g itself, so larger effects look less precise and the tests find small-study "
              "effects that are an artefact (Pustejovsky & Rodgers 2019, Res Synth Methods "
              "10(1):57–71). The usual-SE results are given for comparison."]
    return "\n".join(lines) + "\n"
