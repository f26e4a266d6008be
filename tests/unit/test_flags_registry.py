"""The feature-flag registry: every flag names real permissions and blueprints and has words
for the page; an unknown name is an error, never "off"."""

from __future__ import annotations

import pytest

from portal.flags import operations
from portal.flags.registry import FLAGS, UnknownFlag, flags_gating_blueprint, get
from portal.permissions.roles import PERMISSIONS


def test_every_flag_is_described_and_gates_known_permissions():
    assert {"strategies", "messages"} <= set(FLAGS)
    for name, flag in FLAGS.items():
        assert flag.name == name and name.isidentifier() and len(name) <= 40
        assert str(flag.label) and str(flag.description)
        assert flag.permissions or flag.blueprints
        assert set(flag.permissions) <= set(PERMISSIONS)


def test_unknown_names_raise_before_anything_is_read():
    with pytest.raises(UnknownFlag) as refused:
        get("strategy")
    assert str(refused.value) == ("unknown feature flag 'strategy': the known flags are "
                                  "messages, placements, strategies")
    with pytest.raises(UnknownFlag):
        operations.flag_on("strategy", None)  # no database, no app: it fails on the name
    assert flags_gating_blueprint("cases") == ()
    assert flags_gating_blueprint("strategies") == ("strategies",)


def test_a_state_is_on_for_a_team_as_its_mode_says():
    state = operations.FlagState("messages", "teams", frozenset({3}))
    assert state.on_for_team(3) and not state.on_for_team(4) and not state.on_for_team(None)
    assert operations.FlagState("messages").on_for_team(None)
    assert not operations.FlagState("messages", "off").on_for_team(3)
