"""Koji hub plugin: the buildContainer and buildSourceContainer calls.

Thin adapter: Koji state in, koji_containerbuild.hub_policy decides, a task out.
Enable with `Plugins = hub_containerbuild` in hub.conf; settings are read from
/etc/koji-hub/plugins/hub_containerbuild.conf on first use (see docs/hub.md).
"""

import logging

import koji
import koji.tasks
import kojihub
from koji.context import context
from koji.plugin import export

from koji_containerbuild import hub_policy

logger = logging.getLogger('koji.plugin.hub_containerbuild')

# Loaded lazily: an import error would take the whole hub offline.
CONFIG = hub_policy.LazyConfig(hub_policy.CONFIG_FILE)

# Channel/priority policies and parse_task_params see the tasks' arguments (buildContainer,
# buildSourceContainer and the native createContainer subtasks).
hub_policy.register_signatures(koji.tasks.LEGACY_SIGNATURES)


def _caller():
    return hub_policy.Caller(context.session.hasPerm)


def _lookups():
    return hub_policy.Lookups(kojihub.get_build_target, kojihub.get_tag)


def _submit(request):
    for warning in request.warnings:
        logger.warning('%s by user %s: %s', request.method, context.session.user_id, warning)
    return kojihub.make_task(request.method, request.arglist, **request.task_opts)


@export
def buildContainer(src, target, opts=None, priority=None,
                   channel=hub_policy.DEFAULT_BINARY_CHANNEL):
    """Queue a container image build of `src` (scheme://host/path#ref) for `target`."""
    context.session.assertLogin()
    request = hub_policy.container_request(src, target, opts, priority, channel,
                                           CONFIG.get(), _caller(), _lookups())
    return _submit(request)


@export
def buildSourceContainer(target, opts=None, priority=None,
                         channel=hub_policy.DEFAULT_SOURCE_CHANNEL):
    """Queue a source container build for the image named in `opts` (koji_build_id/nvr)."""
    context.session.assertLogin()
    request = hub_policy.source_container_request(target, opts, priority, channel,
                                                  CONFIG.get(), _caller(), _lookups())
    return _submit(request)
