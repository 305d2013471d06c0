"""``preview``'s explanation of occasions of any age: a milestone crossed long ago, an old
first order, one decided long ago and one due further ahead than a year are each explained
by what really happened, not as an occasion that never was."""

from __future__ import annotations

from conftest import Workspace
from regard.engine.explain import explain
from regard.store import Store, open_store
from regard.workspace import load_config
from shop_rows import add_contact, add_delivery, add_event, campaign, instant

AT = "2026-03-10T12:00:00Z"
TEXT = "{% block subject %}Hallo{% endblock %}{% block text %}Hallo{% endblock %}"


def _shop(workspace: Workspace) -> Store:
    workspace.write("templates/thank-you.j2", TEXT)
    store = open_store(workspace.store_target)
    with store.write() as conn:
        add_contact(conn, "vera")
        # five orders, the third (580 days before AT) takes total_spent past 500
        for n, day in enumerate(
            ("2024-01-05", "2024-03-01", "2024-08-07", "2025-06-01", "2026-03-01")
        ):
            add_event(conn, f"v{n}", "vera", f"{day}T10:00:00Z", amount=200)
    return store


def _why(store: Store, workspace: Workspace, trigger: dict[str, object], **fields: object):
    config = load_config(workspace.config)
    return explain(store, config, campaign("c", trigger, **fields), "vera", instant(AT))


def test_a_milestone_crossed_long_ago_is_too_late_not_never(workspace: Workspace) -> None:
    store = _shop(workspace)
    milestone = {"type": "milestone", "metric": "total_spent", "threshold": 500}
    answer = _why(store, workspace, milestone)
    assert (answer.decision, answer.reason) == (None, "too_late")
    assert answer.due_at == instant("2024-08-07T10:00:00Z")
    assert "2024-08-07" in answer.detail and "has not reached" not in answer.detail


def test_an_old_first_order_is_too_late(workspace: Workspace) -> None:
    store = _shop(workspace)
    answer = _why(store, workspace, {"type": "post_purchase", "nth": 1})
    assert (answer.reason, answer.event_id) == ("too_late", "v0")
    assert "no order" not in answer.detail
    # asked for that order by its id, the same
    config = load_config(workspace.config)
    first = explain(store, config, campaign("c", {"type": "post_purchase", "nth": 1}),
                    "vera", instant(AT), "v0")  # fmt: skip
    assert (first.reason, first.occasion) == ("too_late", "v0")


def test_an_occasion_decided_long_ago_says_so(workspace: Workspace) -> None:
    store = _shop(workspace)
    add_delivery(store, "c", "vera", "sent", "2024-08-08T09:00:00Z",
                 sent="2024-08-08T09:00:01Z", occasion="total_spent:500")  # fmt: skip
    milestone = {"type": "milestone", "metric": "total_spent", "threshold": 500}
    answer = _why(store, workspace, milestone)
    assert answer.reason == "already_decided"
    assert "2024-08-08T09:00:00Z" in answer.detail and "sent" in answer.detail


def test_an_occasion_more_than_a_year_ahead_is_not_due(workspace: Workspace) -> None:
    store = _shop(workspace)
    answer = _why(store, workspace, {"type": "inactivity", "after": "730d"})
    assert answer.reason == "not_due"
    assert answer.due_at == instant("2028-02-29T10:00:00Z")


def test_no_occasion_still_says_never(workspace: Workspace) -> None:
    store = _shop(workspace)
    milestone = {"type": "milestone", "metric": "total_spent", "threshold": 5000}
    answer = _why(store, workspace, milestone)
    assert answer.reason == "no_occasion"
    assert "has not reached 5000" in answer.detail


def test_the_latest_occasion_is_explained_not_an_older_decided_one(workspace: Workspace) -> None:
    store = _shop(workspace)
    # the first order was thanked for in 2024; the latest (2026-03-01) came too late
    add_delivery(store, "c", "vera", "sent", "2024-01-06T09:00:00Z", occasion="v0")
    answer = _why(store, workspace, {"type": "post_purchase"})
    assert (answer.reason, answer.occasion) == ("too_late", "v4")
    # asked for the first order, it is the decided one
    config = load_config(workspace.config)
    first = explain(store, config, campaign("c", {"type": "post_purchase"}), "vera",
                    instant(AT), "v0")  # fmt: skip
    assert (first.reason, first.occasion) == ("already_decided", "v0")
