"""The emulator's scaling rules, at chosen times (no waiting)."""

from __future__ import annotations

import pytest

from sqs_sagemaker_invoker.local.sagemaker.fleet import Fleet


def test_a_scale_out_serves_only_after_its_provisioning_time() -> None:
    # GIVEN 1 serving instance WHEN asked for 3 with 60 s of provisioning at t=100
    fleet = Fleet(1)
    fleet.scale_to(3, now=100.0, provisioning_s=60.0)
    # THEN 1 serves until t=160, then 3
    assert (fleet.current(159.9), fleet.desired) == (1, 3)
    assert fleet.current(160.0) == 3


def test_a_scale_in_is_at_once_and_drops_provisioning_instances_first() -> None:
    # GIVEN 2 serving and 2 provisioning (one since t=0, one since t=10; 30 s each)
    fleet = Fleet(2)
    fleet.scale_to(3, now=0.0, provisioning_s=30.0)
    fleet.scale_to(4, now=10.0, provisioning_s=30.0)
    # WHEN asked for 3 THEN the youngest provisioning instance goes, the older keeps its time
    fleet.scale_to(3, now=11.0, provisioning_s=30.0)
    assert (fleet.current(29.9), fleet.current(30.0), fleet.desired) == (2, 3, 3)
    # WHEN asked for 1 THEN at once
    fleet.scale_to(1, now=31.0, provisioning_s=30.0)
    assert (fleet.current(31.0), fleet.desired) == (1, 1)


def test_describe_shapes_and_bad_requests() -> None:
    fleet = Fleet(0)
    fleet.scale_to(2, now=0.0, provisioning_s=5.0)
    assert fleet.describe("copies", "AllTraffic", now=1.0) == {
        "RuntimeConfig": {"DesiredCopyCount": 2, "CurrentCopyCount": 0}
    }
    assert fleet.describe("instances", "AllTraffic", now=5.0) == {
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "CurrentInstanceCount": 2, "DesiredInstanceCount": 2}
        ]
    }
    with pytest.raises(ValueError, match="negative"):
        fleet.scale_to(-1, now=6.0, provisioning_s=0.0)
    with pytest.raises(ValueError, match="provisioning_s"):
        fleet.scale_to(1, now=6.0, provisioning_s=-1.0)
