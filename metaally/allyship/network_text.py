"""Which technique works best: Table 2 as a network of techniques, its analysis as structured
facts, and the sentences summary.md prints from them.

Each contrast of Table 2 joins two nodes: the row's ``technique`` (the intervention arm) and
its ``comparator_technique`` (what the comparison arm received; data/README.md).  Combined
techniques are one node ("video + reflection writing").  A comparison arm coded
``unspecified`` becomes a node of its own per study.  Sampling covariances come from
``shared_arm_covariance`` (Gleser & Olkin 2009 for rows sharing one arm, the CHE working
correlation for rows on the same arms).  The network is analysed part by part: the parts
that are not connected to each other are named, never merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import metaally as ma

__all__ = [
    "DOMAINS",
    "NetworkFacts",
    "PartFit",
    "REFERENCE",
    "TechniqueNetwork",
    "analyse",
    "fit_network",
    "network_facts",
    "network_section",
    "network_sentences",
    "node_label",
    "technique_network",
]

REFERENCE = "control"
#: outcome domains analysed as networks of their own (besides all outcomes together)
DOMAINS = ("knowledge_awareness", "attitude_bias", "intention_behaviour", "motivation_affect")


def node_label(node: str) -> str:
    """"expert_video;story_video" -> "Expert video + story video"; "control" -> "Control"."""
    words = [w.replace("_", " ") for w in node.split(";")]
    text = " + ".join(words)
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class TechniqueNetwork:
    """Contrasts of the review as a network: ``frame`` (study_id, treat1, treat2, yi, vi, n1,
    n2, outcome_domain, es_id) and their sampling covariance ``V``."""

    frame: pd.DataFrame
    V: np.ndarray

    def subset(self, mask: np.ndarray) -> TechniqueNetwork:
        """The rows where ``mask`` is true, with their block of ``V``."""
        rows = np.flatnonzero(mask)
        return TechniqueNetwork(self.frame.iloc[rows].reset_index(drop=True),
                                self.V[np.ix_(rows, rows)])

    def participants(self) -> dict[str, float]:
        """Participants per node: each study's arm size counted once per node."""
        arms = pd.concat([
            self.frame[["study_id", "treat1", "n1"]].set_axis(["study", "node", "n"], axis=1),
            self.frame[["study_id", "treat2", "n2"]].set_axis(["study", "node", "n"], axis=1),
        ])
        per_study = arms.groupby(["study", "node"])["n"].max()
        return per_study.groupby(level="node").sum().to_dict()


def technique_network(studies: pd.DataFrame, effects: pd.DataFrame,
                      rho: float = 0.6) -> TechniqueNetwork:
    """The included contrasts of ``effects`` (``compute_effects`` of ``studies``) as a network.

    ``comparator_technique`` is read from ``studies`` by (study_id, source_line); blank
    means ``control`` for a row whose ``comparator`` is control (the validator requires it
    for an active comparator).
    """
    if "comparator_technique" not in studies.columns:
        raise ValueError("studies has no comparator_technique column (data/README.md)")
    keys = studies.set_index(["study_id", "source_line"])["comparator_technique"]
    rows = effects[effects["included"]].reset_index(drop=True)
    comparator = keys.reindex(pd.MultiIndex.from_frame(rows[["study_id", "source_line"]]))
    treat2 = comparator.replace("", np.nan).to_numpy(dtype=object, copy=True)
    blank_control = pd.isna(treat2) & (rows["comparator"] == "control").to_numpy()
    treat2[blank_control] = "control"  # blank means the control arm (data/README.md)
    rows = rows.assign(treat2=treat2)
    rows = rows.dropna(subset=["treat2"])
    rows = rows.reset_index(drop=True)
    unspecified = rows["treat2"] == "unspecified"
    rows.loc[unspecified, "treat2"] = "unspecified (" + rows.loc[unspecified, "study_id"] + ")"
    rows["treat1"] = rows["technique"]
    n2 = rows["n2"].fillna(rows["n1"])  # pre-post rows: the same people
    V = ma.shared_arm_covariance(rows["yi"], rows["vi"], rows["study_id"], rows["treat1"],
                                 rows["treat2"], rows["n1"], n2, rho=rho)
    frame = rows[["study_id", "es_id", "treat1", "treat2", "yi", "vi", "n1",
                  "outcome_domain"]].assign(n2=n2.to_numpy())
    return TechniqueNetwork(frame, V)


@dataclass(frozen=True)
class PartFit:
    """The network analysis of one connected part (``result`` None when it cannot be fitted:
    a single node, or no more contrasts than treatment effects)."""

    network: str
    part: int
    nodes: list[str]
    reference: str
    k: int
    n_studies: int
    result: ma.NetworkResult | None
    reason: str = ""


def analyse(net: TechniqueNetwork, name: str) -> list[PartFit]:
    """Fit every connected part of ``net`` (reference: control where the part has it, else its
    first node alphabetically)."""
    f = net.frame
    fits = []
    for i, nodes in enumerate(ma.network_components(f["treat1"], f["treat2"]), start=1):
        mask = f["treat1"].isin(nodes).to_numpy()
        part = net.subset(mask)
        reference = REFERENCE if REFERENCE in nodes else nodes[0]
        k, n_studies = len(part.frame), part.frame["study_id"].nunique()
        reason = ""
        if len(nodes) < 2:
            reason = "a single node, compared only with itself"
        elif k <= len(nodes) - 1:
            reason = f"{k} contrast(s) for {len(nodes) - 1} treatment effect(s)"
        result = None
        if not reason:
            result = ma.network_meta_analysis(part.frame["yi"], part.V, part.frame["study_id"],
                                              part.frame["treat1"], part.frame["treat2"],
                                              reference=reference)
        fits.append(PartFit(name, i, nodes, reference, k, n_studies, result, reason))
    return fits


# --------------------------------------------------------------------------- facts and text


@dataclass(frozen=True)
class NetworkFacts:
    """What summary.md says about the network of all outcomes (numbers, no prose)."""

    parts: list[list[str]]
    main_nodes: list[str]
    k: int
    n_studies: int
    tau2: float
    q: float
    q_df: int
    q_pvalue: float
    best: str
    best_pscore: float
    best_estimate: float
    best_ci: tuple[float, float]
    ranking: list[tuple[str, float]]
    single_study_nodes: list[str]
    inconsistency_df: int
    inconsistency_stat: float
    inconsistency_pvalue: float
    separate_parts: list[tuple[list[str], str]]
    domain_best: list[tuple[str, str, float, int]]


def fit_network(studies: pd.DataFrame, effects: pd.DataFrame,
                rho: float = 0.6) -> tuple[TechniqueNetwork, dict[str, list[PartFit]]]:
    """The technique network of the included contrasts and its fits: every connected part
    for all outcomes (key ``"all outcomes"``) and for each outcome domain with contrasts."""
    import warnings

    net = technique_network(studies, effects, rho=rho)
    fits: dict[str, list[PartFit]] = {}
    with warnings.catch_warnings():  # tau2 = 0 (tau2 column) where a part cannot estimate it
        warnings.simplefilter("ignore", RuntimeWarning)
        fits["all outcomes"] = analyse(net, "all outcomes")
        for domain in DOMAINS:
            sub = net.subset((net.frame["outcome_domain"] == domain).to_numpy())
            if len(sub.frame):
                fits[domain] = analyse(sub, domain)
    return net, fits


def network_section(studies: pd.DataFrame, effects: pd.DataFrame, rho: float = 0.6) -> str:
    """The "Which technique works best: the network" section of summary.md."""
    net, fits = fit_network(studies, effects, rho)
    domains = {d: f for d, f in fits.items() if d != "all outcomes"}
    return "\n".join([
        "## Which technique works best: the network of techniques", "",
        network_sentences(network_facts(fits["all outcomes"], domains, net)), "",
        "Tables: `results/network_pscores.csv`, `results/network_league.csv`, "
        "`results/network_coef.csv`; figures: `figures/network_*.png`.",
    ])


def network_facts(fits: list[PartFit], domain_fits: dict[str, list[PartFit]],
                  net: TechniqueNetwork) -> NetworkFacts:
    """Facts of the main part (the one holding control) of the all-outcomes network."""
    main = next(f for f in fits if f.reference == REFERENCE and f.result is not None)
    res = main.result
    p = res.pscores()
    best = next(t for t in p.sort_values(ascending=False).index if t != REFERENCE)
    coef = res.coef.loc[best]
    inconsistency = res.design_by_treatment()
    studies_per_node = _studies_per_node(net.frame[net.frame["treat1"].isin(main.nodes)])
    domain_best = []
    for domain, parts in domain_fits.items():
        for f in parts:
            if f.reference == REFERENCE and f.result is not None:
                dp = f.result.pscores().drop(REFERENCE).sort_values(ascending=False)
                domain_best.append((domain, dp.index[0], float(dp.iloc[0]), f.n_studies))
    return NetworkFacts(
        parts=[f.nodes for f in fits], main_nodes=main.nodes, k=main.k,
        n_studies=main.n_studies, tau2=res.tau2, q=res.q,
        q_df=res.k - len(res.treatments), q_pvalue=res.q_pvalue, best=best,
        best_pscore=float(p[best]),
        best_estimate=float(coef["estimate"]),
        best_ci=(float(coef["ci_low"]), float(coef["ci_high"])),
        ranking=[(t, float(v)) for t, v in p.sort_values(ascending=False).items()],
        single_study_nodes=sorted(t for t, n in studies_per_node.items()
                                  if n == 1 and t != REFERENCE),
        inconsistency_df=inconsistency.df, inconsistency_stat=inconsistency.stat,
        inconsistency_pvalue=inconsistency.pvalue,
        separate_parts=[(f.nodes, f.reason or f"analysed on its own against "
                                     f"{node_label(f.reference).lower()}")
                        for f in fits if f is not main],
        domain_best=domain_best,
    )


def _studies_per_node(frame: pd.DataFrame) -> dict[str, int]:
    long = pd.concat([frame[["study_id", "treat1"]].set_axis(["s", "t"], axis=1),
                      frame[["study_id", "treat2"]].set_axis(["s", "t"], axis=1)])
    return long.drop_duplicates().groupby("t")["s"].size().to_dict()


def network_sentences(facts: NetworkFacts) -> str:
    """The "Which technique works best" paragraph of summary.md (markdown)."""
    lo, hi = facts.best_ci
    parts_text = "; ".join("{" + ", ".join(node_label(n) for n in nodes) + "}"
                           for nodes in facts.parts)
    lines = [
        f"Seen as a network of techniques (direct and indirect comparisons, each multi-arm "
        f"study's shared arm counted once), Table 2 falls into {len(facts.parts)} parts that "
        f"are not connected to each other: {parts_text}.  Only the part that contains "
        f"control ({len(facts.main_nodes)} nodes, {facts.n_studies} studies, {facts.k} "
        f"effects) can say which technique works best against control.",
        f"There, {node_label(facts.best)} ranks first (P-score {facts.best_pscore:.2f}; "
        f"g = {facts.best_estimate:.2f} vs control, 95% CI {lo:.2f} to {hi:.2f}), with "
        f"tau^2 = {facts.tau2:.3f} between comparisons.",
    ]
    if facts.q_pvalue < 0.05:
        lines.append(
            f"The effects vary more than sampling error and the between-comparison variance "
            f"allow (QE = {facts.q:.1f}, df = {facts.q_df}, "
            f"{'p < .001' if facts.q_pvalue < 0.001 else f'p = {facts.q_pvalue:.3f}'}): "
            f"much of it is between outcomes of the same comparison, which this model does "
            f"not separate, so its intervals are too narrow.")
    if facts.inconsistency_df == 0:
        check = ("no technique is compared both directly and indirectly (no closed loop), "
                 "so consistency cannot be checked")
    else:
        check = (f"the design-by-treatment test of inconsistency gives Q = "
                 f"{facts.inconsistency_stat:.2f} on {facts.inconsistency_df} df "
                 f"(p = {facts.inconsistency_pvalue:.3f})")
    if facts.single_study_nodes:
        lines.append(
            f"This ranking is weak evidence: {len(facts.single_study_nodes)} of "
            f"{len(facts.main_nodes) - 1} techniques were tested in a single study each "
            f"({', '.join(node_label(t) for t in facts.single_study_nodes)}), so their "
            f"places rest on one comparison with control; {check}.")
    else:
        lines.append(check[:1].upper() + check[1:] + ".")
    for nodes, why in facts.separate_parts:
        lines.append(f"Not connected to control: {', '.join(node_label(n) for n in nodes)} "
                     f"({why}).")
    for domain, best, pscore, n_studies in facts.domain_best:
        lines.append(f"Outcome domain {domain.replace('_', ' ')}: {node_label(best)} ranks "
                     f"first (P-score {pscore:.2f}, {n_studies} studies).")
    return " ".join(line if line.endswith(".") else line + "." for line in lines)
