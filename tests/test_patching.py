"""RFC 6902 on an immutable tree, and what each subscriber sees of a patch."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from startos.actors.patching import PatchError, apply_patch, view_patch

DOC = {"public": {"a": {"b": [1, 2, 3], "c": "x"}, "d": {}}, "private": {"key": "secret"}}


def test_apply_never_touches_the_original() -> None:
    before = copy.deepcopy(DOC)
    new = apply_patch(
        DOC,
        [
            {"op": "add", "path": "/public/a/b/-", "value": 4},
            {"op": "replace", "path": "/public/a/c", "value": "y"},
            {"op": "move", "from": "/public/a/c", "path": "/public/d/c"},
            {"op": "copy", "from": "/public/a/b", "path": "/public/e"},
        ],
    )
    assert before == DOC
    assert new["public"]["a"] == {"b": [1, 2, 3, 4]}
    assert new["public"]["d"] == {"c": "y"} and new["public"]["e"] == [1, 2, 3, 4]
    assert new["private"] is DOC["private"]  # untouched branches are shared, not copied


@pytest.mark.parametrize(
    ("ops", "match"),
    [
        ([{"op": "replace", "path": "/public/nope/x", "value": 1}], "cannot apply"),
        ([{"op": "test", "path": "/public/a/c", "value": "z"}], "failed its test"),
        ([{"op": "remove", "path": "/public/a/b/9"}], "cannot apply"),
        ([{"op": "add", "path": "public", "value": 1}], "cannot apply"),
        ([{"path": "/x"}], "malformed"),
    ],
)
def test_a_failing_patch_is_atomic(ops: list[dict[str, Any]], match: str) -> None:
    before = copy.deepcopy(DOC)
    good_first = [{"op": "replace", "path": "/public/a/c", "value": "changed"}, *ops]
    with pytest.raises(PatchError, match=match):
        apply_patch(DOC, good_first)
    assert before == DOC


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(json_values, json_values)
def test_apply_agrees_with_jsonpatch_and_views_reconstruct(old: Any, new: Any) -> None:
    doc = {"public": {"x": old, "y": 1}}
    target = {"public": {"x": new, "y": 1}}
    patch = jsonpatch.make_patch(doc, target).patch
    frozen = copy.deepcopy(doc)
    assert apply_patch(doc, patch) == target
    assert doc == frozen
    # A subscriber of /public/x that applies its view to its copy ends where the server is.
    view = view_patch(patch, "/public/x", target)
    assert jsonpatch.apply_patch(copy.deepcopy(old), view) == new


def test_views_rebase_drop_and_replace() -> None:
    ops = [
        {"op": "replace", "path": "/public/a/c", "value": "y"},
        {"op": "add", "path": "/private/k", "value": 1},
        {"op": "test", "path": "/public/a/c", "value": "y"},
    ]
    doc_after = apply_patch(DOC, ops[:2])
    assert view_patch(ops, "/public", doc_after) == [{"op": "replace", "path": "/a/c", "value": "y"}]
    assert view_patch(ops, "/public/d", doc_after) == []
    whole = view_patch([{"op": "replace", "path": "/public", "value": {"a": 1}}], "/public/a", {"public": {"a": 1}})
    assert whole == [{"op": "replace", "path": "", "value": 1}]
    moved_out = view_patch(
        [{"op": "move", "from": "/public/a/c", "path": "/elsewhere"}], "/public/a", {"public": {"a": {}}}
    )
    assert moved_out == [{"op": "replace", "path": "", "value": {}}]
