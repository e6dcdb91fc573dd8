"""The hub double's getRepo, getBuildType, cancelTaskChildren and listArchives, checked
against kojihub's behaviour (koji-plugin-facts.md §3/§4, container-image-metadata.md §2)."""

import hashlib
import json

import koji
import pytest

CG = 'koji-containerbuild'
READY = koji.REPO_STATES['READY']
REPO_KEYS = {'id', 'tag_id', 'tag_name', 'creation_time', 'creation_ts', 'state_time',
             'state_ts', 'create_event', 'create_ts', 'begin_event', 'begin_ts',
             'end_event', 'end_ts', 'state', 'dist', 'opts', 'custom_opts', 'task_id',
             'task_state'}


# ---------------------------------------------------------------- getRepo

def test_get_repo_newest_ready_repo(hub):
    hub.add_tag('build')
    assert hub.getRepo('build') is None
    first = hub.add_repo('build')
    second = hub.add_repo('build', repo_id=5)
    expired = hub.add_repo('build', state=koji.REPO_STATES['EXPIRED'])
    repo = hub.getRepo('build')
    assert set(repo) == REPO_KEYS
    assert repo['id'] == 5 == second['id'] and repo['state'] == READY
    assert repo['tag_name'] == 'build' and repo['dist'] is False
    assert isinstance(repo['create_ts'], float) and isinstance(repo['creation_time'], str)
    # by id as well as by name; a state picks among repos of that state only
    assert hub.getRepo(hub.getTag('build')['id'])['id'] == 5
    assert hub.getRepo('build', state=koji.REPO_STATES['EXPIRED'])['id'] == expired['id']
    # with an event, the newest repo made at or before it, whatever its state
    assert hub.getRepo('build', event=first['create_event'])['id'] == first['id']
    assert hub.getRepo('build', min_event=second['create_event'] + 5) is None


def test_get_repo_dist_and_unknown_tag(hub):
    hub.add_tag('build')
    hub.add_repo('build', dist=True)
    assert hub.getRepo('build') is None
    assert hub.getRepo('build', dist=True)['dist'] is True
    with pytest.raises(koji.GenericError, match='No such'):
        hub.getRepo('no-such-tag')


# ---------------------------------------------------------------- getBuildType

def test_get_build_type(hub):
    image = hub.add_build('demo-container-1.0-3', extra={'image': {'index': {}}})
    assert hub.getBuildType(image['id']) == {'image': {'build_id': image['id']}}
    assert hub.getBuildType(image['nvr']) == {'image': {'build_id': image['id']}}
    typed = hub.add_build('demo-icm-1.0-1', extra={'typeinfo': {'icm': {'name': 'x'}}})
    assert hub.getBuildType(typed['id']) == {'icm': {'name': 'x'}}
    plain = hub.add_build('demo-1.0-1')
    assert hub.getBuildType(plain['id']) == {}
    assert hub.getBuildType(999) is None
    with pytest.raises(koji.GenericError, match='No such build'):
        hub.getBuildType(999, strict=True)


# ---------------------------------------------------------------- cancelTaskChildren

def test_cancel_task_children(hub, task_id):
    kids = [hub.host.subtask('createContainer', [arch], task_id, label=arch)
            for arch in ('x86_64', 'aarch64')]
    grandchild = hub.add_task('createContainer', parent=kids[0], owner='alice')
    hub.finish_task(kids[1], result='done')
    assert hub.cancelTaskChildren(task_id) is None
    states = [hub.getTaskInfo(t)['state'] for t in kids + [grandchild]]
    assert states == [koji.TASK_STATES['CANCELED'], koji.TASK_STATES['CLOSED'],
                      koji.TASK_STATES['CANCELED']]
    assert hub.getTaskInfo(task_id)['state'] == koji.TASK_STATES['OPEN']


def test_cancel_task_children_needs_owner_or_host(hub):
    other = hub.add_task(host=False, owner='alice')
    with pytest.raises(koji.ActionNotAllowed):
        hub.cancelTaskChildren(other)
    with pytest.raises(koji.GenericError, match='No such task'):
        hub.cancelTaskChildren(999999)


# ---------------------------------------------------------------- listArchives extra

def _upload(hub, directory, name, data):
    hub.rawUpload(data, 0, directory, name)
    return {'filename': name, 'filesize': len(data), 'checksum_type': 'sha256',
            'checksum': hashlib.sha256(data).hexdigest(), 'buildroot_id': 1}


def test_list_archives_keeps_the_whole_output_extra(hub):
    hub.grant_cg_access(hub.getUser()['name'], CG)
    docker = {'id': 'sha256:aa', 'digests': {'application/vnd.docker.distribution.'
                                             'manifest.v2+json': 'sha256:bb'}}
    image = dict(_upload(hub, 'cg/x', 'docker-image-sha256:aa.x86_64.tar.gz', b'tar'),
                 type='docker-image', arch='x86_64',
                 extra={'image': {'arch': 'x86_64'}, 'docker': docker})
    log = dict(_upload(hub, 'cg/x', 'x86_64.log', b'log\n'), type='log', arch='noarch')
    meta = {'metadata_version': 0,
            'build': {'name': 'demo', 'version': '1.0', 'release': '1', 'source': 'git://h/r#a',
                      'start_time': 1, 'end_time': 2, 'extra': {'image': {}}},
            'buildroots': [{'id': 1, 'host': {'os': None, 'arch': 'x86_64'},
                            'content_generator': {'name': CG, 'version': '1'},
                            'container': {'type': 'none', 'arch': 'x86_64'},
                            'tools': [], 'components': []}],
            'output': [image, log]}
    build = hub.CGImport(json.loads(json.dumps(meta)), 'cg/x')
    archives = hub.listArchives(buildID=build['id'], type='image')
    assert len(archives) == 1
    assert archives[0]['extra'] == {'image': {'arch': 'x86_64'}, 'docker': docker}
    assert archives[0]['arch'] == 'x86_64' and archives[0]['btype'] == 'image'
    assert hub.getBuildType(build['id']) == {'image': {'build_id': build['id']}}


# ---------------------------------------------------------------- seeding helper

def test_add_container_target(hub):
    target = hub.add_container_target('cand', 'build', 'x86_64 s390x', ['demo', 'other'])
    assert target == hub.getBuildTarget('cand')
    assert (target['build_tag_name'], target['dest_tag_name']) == ('build', 'cand')
    assert hub.getBuildConfig('build')['arches'] == 'x86_64 s390x'
    assert not hub.getTag('cand')['arches']
    assert [hub.getPackageConfig('cand', p)['blocked'] for p in ('demo', 'other')] == \
        [False, False]
    assert hub.getPackageConfig('build', 'demo') is None
