"""YAML tags on the wrong kind of node in a Compose file are located errors, not internal errors."""

from __future__ import annotations

import pytest

from envd.interop.compose_import import import_compose
from envd.values.errors import SpecError


@pytest.mark.parametrize(
    "text", ["services: !!set [a]\n", "services: !!set\n  - a\n", "services: !!map x\n"]
)
def test_a_mapping_tag_on_a_list_or_scalar_is_exit_2(text: str) -> None:
    """`!!set` or `!!map` on a list or a scalar is one SpecError naming the line (it was a TypeError)."""
    with pytest.raises(SpecError) as info:
        import_compose(text)
    assert "docker-compose.yml:1:" in str(info.value)
    assert "not a mapping" in str(info.value)
