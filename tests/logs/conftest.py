"""Fixtures for the log relay tests: a hub double with one OPEN task on this host."""

import pytest

import koji

from tests.doubles.hub_session import HubSessionDouble


@pytest.fixture
def hub():
    hub = HubSessionDouble()
    hub.add_user('alice')
    return hub


@pytest.fixture
def task_id(hub):
    return hub.add_task('buildContainer', ['git://scm.example.com/c/demo#abc', 't', {}],
                        owner='alice')


@pytest.fixture
def upload_path(task_id):
    return koji.pathinfo.taskrelpath(task_id)
