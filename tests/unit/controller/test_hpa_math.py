"""HPA replica calculation, tolerance, missing metrics and stabilization."""

from __future__ import annotations

import pytest
from controller.hpa import MetricsError, PodSample, Recommendations, replica_count

pytestmark = pytest.mark.unit


def ready(usage: int | None, request: int = 100) -> PodSample:
    return PodSample(True, request, usage)


def test_scale_up_down_and_tolerance() -> None:
    # 2 pods at 100% of request, target 50%: ceil(2 * 2) = 4.
    calc = replica_count(2, [ready(100), ready(100)], 50)
    assert (calc.replicas, calc.utilization) == (4, 100)
    # 2 pods at 20%, target 50%: ceil(2 * 0.4) = 1.
    assert replica_count(2, [ready(20), ready(20)], 50).replicas == 1
    # 54% against 50% is within the 10% tolerance: stay.
    assert replica_count(2, [ready(54), ready(54)], 50).replicas == 2
    assert replica_count(2, [ready(56), ready(56)], 50).replicas == 3


def test_missing_request_is_an_error() -> None:
    with pytest.raises(MetricsError, match="missing request for cpu"):
        replica_count(1, [PodSample(True, 0, 10)], 50)


def test_missing_metrics_are_conservative() -> None:
    # Scaling down: the pod without a sample counts as using its whole request, so
    # 2 pods at 10% and one unknown give (10+10+100)/300 = 40% of a 50% target.
    calc = replica_count(3, [ready(10), ready(10), ready(None)], 50)
    assert calc.replicas == 3
    # Scaling up: the unknown pod uses nothing: (200+200+0)/300 = 133% of 50%: ceil(3 * 2.67).
    assert replica_count(3, [ready(200), ready(200), ready(None)], 50).replicas == 8


def test_unready_pods_do_not_push_scale_up() -> None:
    samples = [ready(100), PodSample(False, 100, 100)]
    # ready: 100% vs 80% target; with the unready pod at 0: 50% -> direction flips: stay.
    assert replica_count(2, samples, 80).replicas == 2


def test_scale_down_stabilization_takes_the_window_maximum() -> None:
    recs = Recommendations()
    assert recs.stabilize(0.0, 5, 5, 300.0, 0.0) == 5
    assert recs.stabilize(15.0, 2, 5, 300.0, 0.0) == 5
    assert recs.stabilize(200.0, 3, 5, 300.0, 0.0) == 5
    # The 5 from t=0 left the window; the largest since is 3.
    assert recs.stabilize(301.0, 2, 5, 300.0, 0.0) == 3
    # Scale-up is immediate.
    assert recs.stabilize(302.0, 9, 3, 300.0, 0.0) == 9
