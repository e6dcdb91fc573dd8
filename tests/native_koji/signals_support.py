"""Helpers of the crash and cancel tests: native tasks in real processes (the kojid
double), a RUN step that can be cancelled or held, what the registry holds."""

import os

import koji
import requests

from koji_containerbuild.backends import native_storage
from tests.native_koji.conftest import make_repo
from tests.support.waiting import wait_for  # noqa: F401 (the tests import it from here)

BUSYBOX_RUN = 'RUN ["/bin/busybox", "sh", "-c", "%s"]\n'
LABELS = ('LABEL com.redhat.component="demo-container" name="%s" version="%s" '
          'release="1"\n')
# The RUN step of the issue: kojid's cancel kills `sleep` first, the shell goes on.
SLEEP_RUN = 'echo start; /bin/busybox sleep 60; echo done > /slept'
# A RUN step held until the test creates `go` in the task's yum.repos.d mount.
GATE_RUN = ('echo start; until [ -e /etc/yum.repos.d/go ]; do /bin/busybox sleep 0.05; '
            'done; echo done > /slept')


def busybox_repo(git_server, repo_name, name, run, version='1.0'):
    files = {'Dockerfile': 'FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n'
             + BUSYBOX_RUN % run + LABELS % (name, version),
             'busybox': open('/bin/busybox', 'rb').read()}
    return make_repo(git_server, repo_name, files)


def registry_tags(registry_url, repository):
    """The tags the registry lists for `repository` ([] when it has none)."""
    resp = requests.get('%s/v2/%s/tags/list' % (registry_url, repository), timeout=10)
    if resp.status_code == 404:
        return []
    resp.raise_for_status()
    return sorted(resp.json().get('tags') or [])


def arch_task(world, registry_url, src, sha, repository, unique='u-1'):
    """A createContainer task (OPEN, child of an OPEN parent) and its params."""
    hub = world.hub
    parent = hub.add_task('buildContainer', [src, 'f40-container-candidate', {}],
                          owner='alice')
    params = {
        'registry': registry_url, 'repository': repository, 'unique_tag': unique,
        'identity': {'component': 'demo-container', 'name': repository, 'version': '1.0',
                     'release': '1', 'nvr': 'demo-container-1.0-1'},
        'build_tag': 'f40-container-build', 'repo_id': 77, 'yum_repourls': [],
        'base_image': None, 'dockerfile': 'Dockerfile',
        'labels': {'vcs-url': src.split('#')[0], 'vcs-ref': sha}, 'scratch': False,
        'owner': 'alice',
    }
    args = [src, 'f40-container-candidate', 'x86_64', params]
    task_id = hub.add_task('createContainer', args, owner='alice', parent=parent,
                           label='x86_64', channel='container-binary', arch='x86_64')
    return task_id, args


def task_log(hub, task_id, name='x86_64.log'):
    return hub.uploaded_files(task_id).get(name, b'').decode('utf-8', 'replace')


def task_workdir(options, task_id):
    return os.path.join(options.workdir, koji.pathinfo.taskrelpath(task_id))


def storage_left(world):
    """What is left under the world's storage_root (task folders are removed when empty).

    The builder's parent image cache stays by design; an unfinished fill in it counts."""
    root = str(world.storage_root)
    left = sorted(os.listdir(root)) if os.path.isdir(root) else []
    if native_storage.CACHE_DIR in left:
        left.remove(native_storage.CACHE_DIR)
        tmp = os.path.join(root, native_storage.CACHE_DIR, 'tmp')
        left += ['%s/tmp/%s' % (native_storage.CACHE_DIR, name)
                 for name in sorted(os.listdir(tmp))]
    return left


def gone_or_zombie(pid):
    """True once `pid` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True
