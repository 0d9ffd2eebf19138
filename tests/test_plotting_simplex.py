"""lib.plotting.simplex_scatter: barycentric coordinates drawn in a triangle."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib.plotting import SIMPLEX_CORNERS, simplex_scatter  # noqa: E402


def test_corners_and_centre_land_where_they_should():
    fig, ax = plt.subplots()
    points = np.vstack([np.eye(3), np.full((1, 3), 1 / 3)])
    simplex_scatter(ax, points)
    xy = ax.collections[0].get_offsets()
    np.testing.assert_allclose(xy[:3], SIMPLEX_CORNERS, atol=1e-12)
    np.testing.assert_allclose(xy[3], SIMPLEX_CORNERS.mean(0), atol=1e-12)
    # the triangle is equilateral with unit sides
    sides = np.linalg.norm(SIMPLEX_CORNERS - np.roll(SIMPLEX_CORNERS, 1, axis=0), axis=1)
    np.testing.assert_allclose(sides, 1.0)
    plt.close(fig)


def test_distance_to_opposite_edge_is_proportional_to_the_coordinate():
    fig, ax = plt.subplots()
    rng = np.random.default_rng(0)
    points = rng.dirichlet(np.ones(3), size=50)
    simplex_scatter(ax, torch.tensor(points))  # tensors are accepted
    xy = np.asarray(ax.collections[0].get_offsets())
    height = np.sqrt(3) / 2
    np.testing.assert_allclose(xy[:, 1], points[:, 2] * height, atol=1e-12)  # edge 0-1 is y=0
    plt.close(fig)


def test_second_call_adds_points_but_not_a_second_triangle():
    fig, ax = plt.subplots()
    simplex_scatter(ax, np.eye(3), labels=["a", "b", "c"], label="first")
    simplex_scatter(ax, np.eye(3), label="second")
    assert len(ax.lines) == 1 and len(ax.collections) == 2
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    plt.close(fig)


@pytest.mark.parametrize(
    "points, match",
    [(np.ones((4, 2)) / 2, r"shape \[N, 3\]"), (np.ones((4, 3)), "sum"),
     (np.array([[1.5, -0.5, 0.0]]), ">= 0")],
)
def test_rejects_points_off_the_simplex(points, match):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=match):
        simplex_scatter(ax, points)
    with pytest.raises(ValueError, match="3 corners"):
        simplex_scatter(ax, np.eye(3), labels=["a"])
    plt.close(fig)
