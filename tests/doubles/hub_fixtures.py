"""Shared pytest fixtures for tests that need a bare hub double and one running task.

Import them into a conftest (``from tests.doubles.hub_fixtures import hub, task_id``):
``hub`` is a HubSessionDouble with user alice; ``task_id`` is an OPEN buildContainer
task of alice's on the double's builder host, with TASK_PARAMS as its request.
"""

import pytest

from tests.doubles.hub_session import HubSessionDouble

TASK_PARAMS = ['git://scm.example.com/c/demo#abc', 'f40-container-candidate', {}]


@pytest.fixture
def hub():
    double = HubSessionDouble()
    double.add_user('alice')
    return double


@pytest.fixture
def task_id(hub):
    return hub.add_task('buildContainer', TASK_PARAMS, owner='alice')
