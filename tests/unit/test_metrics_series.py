"""`runtime/metrics.apply_series`: the per-object series looked up once, and new ones after `forget`."""

from __future__ import annotations

from hubsettings_operator.runtime import metrics


def test_the_apply_series_of_a_forgotten_object_are_new_ones() -> None:
    """The reconciler looks a HubSettings' series up once (metrics.apply_series); after `forget` (the object
    deleted) a new object of the same name must write to live series, not to the removed ones."""
    labels = {"namespace": "unit-series", "name": "hub"}
    series = metrics.apply_series("unit-series", "hub")
    assert metrics.apply_series("unit-series", "hub") is series
    series.last_apply.set(5)
    assert (
        metrics.REGISTRY.get_sample_value("hubsettings_last_successful_apply_timestamp_seconds", labels) == 5
    )
    metrics.forget("unit-series", "hub")
    assert (
        metrics.REGISTRY.get_sample_value("hubsettings_last_successful_apply_timestamp_seconds", labels)
        is None
    )
    metrics.apply_series("unit-series", "hub").last_apply.set(7)
    assert (
        metrics.REGISTRY.get_sample_value("hubsettings_last_successful_apply_timestamp_seconds", labels) == 7
    )
    metrics.forget("unit-series", "hub")
