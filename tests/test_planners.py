"""MPPI and CEM find the optimum of known analytic costs, warm-start by shifting, and are seeded."""
import numpy as np
import pytest

from agents.planners import Planner, PlannerConfig

TARGET = np.array([0.6, -0.4, 0.2, 0.0, 0.05])


def quadratic(actions):
    """Cost of [N, H, 5] sequences: squared distance of every step to TARGET (scaled like VP² costs)."""
    return 100 * ((actions - TARGET) ** 2).sum(axis=(1, 2))


@pytest.mark.parametrize("planner,rounds", [("mppi", 1), ("cem", 3)])
def test_planners_reach_the_optimum_of_a_quadratic(planner, rounds):
    p = Planner(PlannerConfig(planner=planner, rounds=rounds), low=[-1] * 5, high=[1] * 5, seed=0)
    for _ in range(15):  # receding horizon: each call is one more round on the shifted mean
        first = p.plan(quadratic)
    assert np.abs(first - TARGET).max() < 0.1
    assert np.abs(p.mean[:3] - TARGET).max() < 0.15  # the shifted mean warm-starts near the optimum


def test_optimum_on_the_box_boundary_and_seeding():
    def beyond(actions):  # the unconstrained optimum (2, ...) lies outside [-1, 1]: the box clips it
        return 100 * ((actions[..., 0] - 2.0) ** 2).sum(1)
    runs = []
    for _ in range(2):
        p = Planner(PlannerConfig(planner="cem", rounds=3, std=(0.5,)), low=[-1] * 2, high=[1] * 2, seed=7)
        runs.append([p.plan(beyond) for _ in range(5)])
    assert runs[0][-1][0] > 0.95 and np.array_equal(runs[0], runs[1])


def test_initial_mean_centres_the_first_samples_and_returns_on_reset():
    cfg = PlannerConfig(samples=400, horizon=3, init_mean=(0, 0, 0, 0, -1))  # push_red: fingers closed
    p = Planner(cfg, low=[-1] * 5, high=[1] * 5, seed=0)
    assert np.array_equal(p.mean[:, 4], [-1, -1, -1]) and not p.mean[:, :4].any()
    assert np.median(p.sample()[..., 4]) == -1  # half the samples clip at the closed end
    p.plan(lambda a: -100 * a[:, :, 4].sum(1))  # the cost wants open fingers: the mean follows it
    assert p.mean[0, 4] > -1
    p.reset()
    assert p.mean[0, 4] == -1


@pytest.mark.parametrize("planner", ["mppi", "cem"])
def test_zero_std_holds_a_component_at_its_initial_mean(planner):
    cfg = PlannerConfig(planner=planner, samples=64, horizon=3, std=(0.5, 0.5, 0.5, 0.5, 0), init_mean=(0, 0, 0, 0, -1))
    p = Planner(cfg, low=[-1] * 5, high=[1] * 5, seed=0)
    for _ in range(4):  # the cost wants open fingers, but the fingers are not explored
        first = p.plan(lambda a: -100 * a[:, :, 4].sum(1) + quadratic(a))
    assert np.allclose(first[4], -1) and np.allclose(p.sample()[..., 4], -1)
    assert np.abs(first[:3] - TARGET[:3]).max() < 0.3  # the other components still optimise


def test_bad_settings():
    for std in ((0.1, -0.1), (0.0,)):
        with pytest.raises(ValueError, match="--std >= 0 and one --std > 0"):
            PlannerConfig(std=std)
    with pytest.raises(ValueError, match="--std has 3 values"):
        Planner(PlannerConfig(std=(0.1, 0.1, 0.1)), low=[-1] * 5, high=[1] * 5)
    with pytest.raises(ValueError, match="--init-mean has 2 values"):
        Planner(PlannerConfig(init_mean=(0.1, 0.1)), low=[-1] * 5, high=[1] * 5)
    with pytest.raises(ValueError, match="planner"):
        PlannerConfig(planner="rs")
    p = Planner(PlannerConfig(samples=8), low=[-1] * 5, high=[1] * 5)
    with pytest.raises(ValueError, match="expected"):
        p.plan(lambda a: np.zeros(3))
