"""A plug-in written for an older choreo: `Domain(saga_id=...)` fails as the module loads."""

from __future__ import annotations

from choreo.domain import Domain
from tests.support import toy

DOMAIN = Domain(name="old", services=(toy.COUNTER,), schema_dirs=(), saga_id="hub")  # type: ignore[call-arg]
