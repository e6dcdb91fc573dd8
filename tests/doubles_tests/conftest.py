"""The hub double's own tests share the hub / task_id fixtures of tests that use it."""

from tests.doubles.hub_fixtures import hub, task_id  # noqa: F401 (fixtures)
