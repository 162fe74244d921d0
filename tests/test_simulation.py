"""simulate(): converges to analytic power, known coverage, identical results on every executor."""

from __future__ import annotations

import pandas as pd
import pytest

import metaally as ma

NORMAL_FE = {"effect": 0.3, "k": 10, "n": 20, "tau": 0.0, "sampling": "normal"}


def test_simulated_fixed_effect_power_converges_to_the_analytic_power() -> None:
    analytic = ma.meta_power(0.3, 20, 10)  # 0.5594533 (metapower)
    errors = []
    for reps in (2_000, 200_000):
        row = ma.simulate(NORMAL_FE, "fe", n_reps=reps, seed=11, chunk_reps=50_000).to_frame()
        power, mcse = row["power"].iloc[0], row["power_mcse"].iloc[0]
        assert abs(power - analytic) < 4 * mcse
        errors.append(mcse)
    assert errors[1] < errors[0] / 5  # the Monte Carlo error shrinks as 1/sqrt(reps)


def test_simulated_random_effects_power_matches_with_known_tau2() -> None:
    # REML estimates tau^2, so only the fixed-tau^2 analytic power is exact; with
    # many studies REML's estimate is close and the z test's power approaches it
    design = {"effect": 0.2, "k": 60, "n": 40, "tau": 0.2, "sampling": "normal"}
    row = ma.simulate(design, "reml_z", n_reps=20_000, seed=3, chunk_reps=20_000).to_frame()
    analytic = ma.meta_power(0.2, 40, 60, tau2=0.04)
    assert abs(row["power"].iloc[0] - analytic) < 0.02


def test_knapp_hartung_covers_at_the_nominal_rate_under_normal_sampling() -> None:
    # HKSJ intervals are close to nominal even for few studies (IntHout, Ioannidis &
    # Borm 2014, BMC Med Res Methodol 14:25); Wald intervals under-cover with k = 3
    design = {"effect": 0.3, "k": 3, "n": 80, "tau": 0.3, "sampling": "normal"}
    out = ma.simulate(design, ["reml_z", "reml_knha"], n_reps=20_000, seed=5).to_frame()
    wald, hksj = out.set_index("analysis")["coverage"]
    assert hksj > 0.93
    assert wald < 0.92


def test_che_cr2_is_unbiased_and_reports_failures() -> None:
    design = {"effect": 0.4, "k": 6, "n": 60, "tau": 0.15, "m": 3, "omega": 0.1, "rho": 0.6}
    row = ma.simulate(design, "che_cr2", n_reps=300, seed=2).to_frame().iloc[0]
    assert abs(row["bias"]) < 4 * row["bias_mcse"] + 0.02  # g is nearly unbiased at n = 60
    assert row["failed"] == 0
    assert row["reps"] == 300


def test_grid_is_the_cartesian_product_in_order() -> None:
    out = ma.simulate({"k": [2, 4], "tau": [0.0, 0.2]}, "fe", n_reps=10, seed=0).to_frame()
    assert list(zip(out["k"], out["tau"], strict=True)) == [(2, 0.0), (2, 0.2), (4, 0.0), (4, 0.2)]


def test_results_do_not_depend_on_the_executor() -> None:
    design = {"k": [3, 5], "tau": 0.2, "m": 2}
    kwargs = dict(analysis=["reml_knha", "fe"], n_reps=900, seed=99, chunk_reps=300)
    here = ma.simulate(design, workers=1, **kwargs).to_frame()
    processes = ma.simulate(design, workers=2, **kwargs).to_frame()
    pd.testing.assert_frame_equal(here, processes, check_exact=True)


def test_results_on_a_dask_local_cluster_equal_the_in_process_results() -> None:
    distributed = pytest.importorskip("distributed")
    design = {"k": [2, 4], "tau": 0.1}
    kwargs = dict(analysis=["reml_knha"], n_reps=1_000, seed=4, chunk_reps=250)
    here = ma.simulate(design, **kwargs).to_frame()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = ma.simulate(design, client=client, **kwargs).to_frame()
    pd.testing.assert_frame_equal(here, remote, check_exact=True)


def test_seed_changes_the_draws_and_fixes_them() -> None:
    a = ma.simulate({"k": 4}, "fe", n_reps=200, seed=1).to_frame()
    b = ma.simulate({"k": 4}, "fe", n_reps=200, seed=1).to_frame()
    c = ma.simulate({"k": 4}, "fe", n_reps=200, seed=2).to_frame()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["bias"].iloc[0] != c["bias"].iloc[0]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        (dict(design={"k": 0}), "k"),
        (dict(design={"n": 2}), "n"),
        (dict(design={"tau": -0.1}), "tau"),
        (dict(design={"rho": 1.0}), "rho"),
        (dict(design={"sampling": "exact"}), "sampling"),
        (dict(design={"studies": 3}), "unknown factors"),
        (dict(design={}, analysis="bayes"), "analysis"),
        (dict(design={}, n_reps=1), "n_reps"),
        (dict(design={}, workers=0), "workers"),
    ],
    ids=["k", "n", "tau", "rho", "sampling", "unknown", "analysis", "reps", "workers"],
)
def test_bad_arguments_are_named(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        ma.simulate(**kwargs)
