"""Fixtures for the log relay tests: a hub double with one OPEN task on this host."""

import koji
import pytest

from tests.doubles.hub_fixtures import hub, task_id  # noqa: F401 (fixtures)


@pytest.fixture
def upload_path(task_id):  # noqa: F811
    return koji.pathinfo.taskrelpath(task_id)
