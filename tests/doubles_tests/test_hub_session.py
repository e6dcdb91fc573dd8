"""The hub session double checked against koji-plugin-facts.md and
container-image-metadata.md (§2, §4): shapes, faults, uploads, subtasks, waits,
cancellation, content-generator import rules, policies, fault injection."""

import hashlib
import json
import os
import threading
import xmlrpc.client

import koji
import koji.tasks
import pytest

from tests.doubles.hub_fixtures import TASK_PARAMS
from tests.doubles.hub_session import HubSessionDouble, make_task_handler_options

CG = 'atomic-reactor'


# ---------------------------------------------------------------- shapes

def test_user_api_shapes(hub, task_id):
    hub.add_tag('base', arches='x86_64 s390x', extra={'a': 1, 'b': 1})
    hub.add_tag('build', arches=None, extra={'b': 2}, parents=['base'])
    hub.add_tag('dest')
    hub.add_target('tgt', 'build', 'dest')
    hub.add_package('base', 'demo', owner='alice')
    assert set(hub.getTag('build')) == {'id', 'name', 'perm_id', 'perm', 'arches', 'locked',
                                        'maven_support', 'maven_include_all', 'extra'}
    conf = hub.getBuildConfig('build')
    assert conf['arches'] == 'x86_64 s390x' and conf['extra'] == {'a': 1, 'b': 2}
    assert 'config_inheritance' in conf
    pkg = hub.getPackageConfig('build', 'demo')
    assert set(pkg) == {'package_id', 'package_name', 'tag_id', 'tag_name', 'extra_arches',
                        'blocked', 'owner_id', 'owner_name'}
    assert pkg['owner_name'] == 'alice' and pkg['tag_name'] == 'base'
    assert hub.getPackageConfig('dest', 'demo') is None
    assert set(hub.getBuildTarget('tgt')) == {'id', 'name', 'build_tag', 'build_tag_name',
                                              'dest_tag', 'dest_tag_name'}
    assert hub.getBuildTarget('nope') is None
    with pytest.raises(koji.GenericError):
        hub.getBuildTarget('nope', strict=True)
    info = hub.getTaskInfo(task_id, request=True)
    for key in ('id', 'state', 'create_time', 'create_ts', 'start_time', 'start_ts',
                'completion_time', 'completion_ts', 'channel_id', 'host_id', 'parent',
                'label', 'waiting', 'awaited', 'owner', 'method', 'arch', 'priority',
                'weight', 'request'):
        assert key in info
    assert isinstance(info['state'], int) and isinstance(info['create_time'], str)
    assert info['request'] == TASK_PARAMS
    assert hub.getTaskInfo(999999) is None
    owner = hub.getUser(info['owner'])
    assert owner['name'] == 'alice'
    assert set(owner) == {'id', 'name', 'status', 'usertype', 'krb_principals'}
    assert hub.getUser()['usertype'] == koji.USERTYPES['HOST']
    assert set(hub.getChannel(info['channel_id'])) == {'id', 'name', 'description',
                                                       'enabled', 'comment'}
    assert set(hub.getLastEvent()) == {'id', 'ts'}
    assert hub.host.getID() == hub.host_id


def test_get_build_shapes(hub):
    build = hub.add_build('demo-1.0-3', extra={'image': {}})
    for key in ('id', 'build_id', 'name', 'package_id', 'package_name', 'version', 'release',
                'epoch', 'nvr', 'draft', 'state', 'task_id', 'owner_id', 'owner_name',
                'volume_id', 'volume_name', 'creation_time', 'completion_time', 'source',
                'extra', 'cg_id', 'cg_name'):
        assert key in build
    assert hub.getBuild('demo-1.0-3')['id'] == build['id']
    assert hub.getBuild(build['id'])['nvr'] == 'demo-1.0-3'
    assert hub.getBuild('demo-1.0-4') is None
    with pytest.raises(koji.GenericError):
        hub.getBuild('demo-1.0-4', strict=True)


def test_get_next_release(hub):
    assert hub.getNextRelease({'name': 'demo', 'version': '1'}) == '1'
    hub.add_build('demo-1-3')
    assert hub.getNextRelease({'name': 'demo', 'version': '1'}) == '4'
    hub.add_build('demo-1-5.el9')
    assert hub.getNextRelease({'name': 'demo', 'version': '1'}) == '6.el9'
    hub.add_build('demo-1-1.2.7')
    assert hub.getNextRelease({'name': 'demo', 'version': '1'}) == '1.2.8'
    hub.add_build('demo-1-x.y')
    with pytest.raises(koji.GenericError):
        hub.getNextRelease({'name': 'demo', 'version': '1'})
    hub.add_build('demo-1-9', state=koji.BUILD_STATES['FAILED'])
    with pytest.raises(koji.GenericError):
        hub.getNextRelease({'name': 'demo', 'version': '1'})


# ---------------------------------------------------------------- uploads

def test_raw_upload_semantics(hub, task_id):
    path = koji.pathinfo.taskrelpath(task_id)
    assert path == 'tasks/%d/%d' % (task_id % 10000, task_id)
    res = hub.rawUpload(b'hello ', 0, path, 'a.log')
    assert res == {'size': 6, 'fileverify': 'adler32', 'offset': 0,
                   'hexdigest': koji.util.adler32_constructor(b'hello ').hexdigest()}
    with pytest.raises(koji.GenericError, match='upload path exists'):
        hub.rawUpload(b'again', 0, path, 'a.log')
    hub.rawUpload(b'world\n', 6, path, 'a.log')
    # a retried chunk at an earlier offset truncates first: no duplicate
    hub.rawUpload(b'world\n', 6, path, 'a.log')
    assert hub.downloadTaskOutput(task_id, 'a.log') == b'hello world\n'
    hub.rawUpload(b'tail\n', -1, path, 'a.log')
    assert hub.downloadTaskOutput(task_id, 'a.log') == b'hello world\ntail\n'
    hub.rawUpload(b'new\n', 0, path, 'a.log', overwrite=True)
    assert hub.downloadTaskOutput(task_id, 'a.log') == b'new\n'
    hub.rawUpload('text \u00e9', 0, path, 'b.log')
    assert hub.downloadTaskOutput(task_id, 'b.log') == 'text \u00e9'.encode()
    assert hub.downloadTaskOutput(task_id, 'a.log', offset=1, size=2) == b'ew'
    assert hub.downloadTaskOutput(task_id, 'a.log', offset=-2) == b'w\n'
    with pytest.raises(koji.GenericError, match='Invalid file name'):
        hub.downloadTaskOutput(task_id, '../x')
    with pytest.raises(koji.GenericError, match='no file'):
        hub.downloadTaskOutput(task_id, 'missing.log')
    out = hub.listTaskOutput(task_id, stat=True)
    assert out['a.log']['st_size'] == '4' and isinstance(out['a.log']['st_size'], str)
    assert sorted(hub.listTaskOutput(task_id)) == ['a.log', 'b.log']
    assert hub.listTaskOutput(task_id, all_volumes=True)['a.log'] == ['DEFAULT']
    assert hub.task_output(task_id) == ['a.log', 'b.log']


@pytest.mark.parametrize('path,name,message', [
    ('tasks/1/1', 'x/y.log', 'Invalid upload filename'),
    ('tasks/1/1', '.user', 'Invalid upload filename'),
    ('../etc', 'x.log', 'Invalid upload directory'),
    ('', 'x.log', 'Invalid upload directory'),
    ('tasks/1', 'x.log', 'Invalid task upload directory'),
    ('tasks/1/abc', 'x.log', 'Invalid task upload directory'),
])
def test_upload_name_checks(hub, path, name, message):
    with pytest.raises(koji.GenericError, match=message):
        hub.rawUpload(b'x', 0, path, name)


def test_only_the_host_owning_the_open_task_uploads(hub, task_id):
    other = hub.add_task(host=False)
    with pytest.raises(koji.ActionNotAllowed):
        hub.rawUpload(b'x', 0, koji.pathinfo.taskrelpath(other), 'a.log')
    hub.cancel_task(task_id)
    with pytest.raises(koji.ActionNotAllowed):
        hub.rawUpload(b'x', 0, koji.pathinfo.taskrelpath(task_id), 'a.log')
    with pytest.raises(koji.GenericError, match='No such task'):
        hub.rawUpload(b'x', 0, 'tasks/1/1', 'a.log')


def test_non_task_upload_dir_is_locked_to_its_first_user(hub):
    hub.rawUpload(b'x', 0, 'cg_import/abc', 'm.json')
    hub.claim_upload_dir('cg_import/other', 'alice')
    with pytest.raises(koji.GenericError, match='not owner'):
        hub.rawUpload(b'x', 0, 'cg_import/other', 'm.json')


def test_upload_wrapper_and_disk_mode(tmp_path):
    hub = HubSessionDouble(topdir=str(tmp_path / 'hub'))
    src = tmp_path / 'f.tar.gz'
    src.write_bytes(os.urandom(3000))
    hub.uploadWrapper(str(src), 'cg/dir', blocksize=1024)
    assert hub.uploads[('cg/dir', 'f.tar.gz')] == src.read_bytes()
    assert (tmp_path / 'hub' / 'work' / 'cg' / 'dir' / 'f.tar.gz').read_bytes() == \
        src.read_bytes()
    # overwrite=True is the uploadWrapper default, so a second upload replaces the file
    src.write_bytes(b'short')
    hub.uploadWrapper(str(src), 'cg/dir', name='f.tar.gz')
    assert hub.upload_size('cg/dir', 'f.tar.gz') == 5
    assert len(hub.calls_of('rawUpload')) == 4


# ---------------------------------------------------------------- subtasks and waits

def test_subtask_rules(hub, task_id):
    parent = hub.getTaskInfo(task_id)
    child = hub.host.subtask('createContainer', ['a'], task_id, label='x86_64', arch='x86_64',
                             unknown_opt=1)
    info = hub.getTaskInfo(child)
    assert info['parent'] == task_id and info['priority'] == parent['priority'] - 1
    assert info['owner'] == parent['owner'] and info['state'] == koji.TASK_STATES['FREE']
    assert info['label'] == 'x86_64' and info['arch'] == 'x86_64'
    hub.finish_task(child, fault=koji.BuildError('boom'))
    # same (parent, label): the existing child, whatever its state
    assert hub.host.subtask('createContainer', ['b'], task_id, label='x86_64') == child
    with pytest.raises(koji.ActionNotAllowed):
        hub.host.subtask('createContainer', [], task_id, owner='alice')
    with pytest.raises(koji.GenericError, match='Architecture'):
        hub.host.subtask('createContainer', [], task_id, arch='x86_64,aarch64')
    kw = hub.host.subtask('tagBuild', ['t', 1], task_id, kwargs={'force': True})
    assert hub.getTaskInfo(kw, request=True)['request'][-1] == \
        {'force': True, '__starstar': True}
    hub.cancel_task(task_id)
    with pytest.raises(koji.ActionNotAllowed):
        hub.host.subtask('createContainer', [], task_id, label='new')


def test_task_wait_results(hub, task_id):
    ok = hub.host.subtask('createContainer', [], task_id, label='a')
    bad = hub.host.subtask('createContainer', [], task_id, label='b')
    gone = hub.host.subtask('createContainer', [], task_id, label='c')
    hub.host.taskSetWait(task_id, None)
    assert hub.host.taskWait(task_id) == [[], [ok, bad, gone]]
    hub.finish_task(ok, result={'arch': 'x86_64'})
    hub.finish_task(bad, fault=koji.BuildError('build failed'))
    hub.cancel_task(gone)
    assert hub.host.taskWait(task_id) == [[ok, bad, gone], []]
    assert hub.host.taskWaitResults(task_id, [ok]) == [[ok, {'arch': 'x86_64'}]]
    with pytest.raises(koji.BuildError, match='build failed'):
        hub.host.taskWaitResults(task_id, [ok, bad])
    with pytest.raises(koji.GenericError, match='Task %d is canceled' % gone):
        hub.host.taskWaitResults(task_id, [gone])
    res = hub.host.taskWaitResults(task_id, [ok, bad, gone], canfail=[bad, gone])
    assert res[0] == [ok, {'arch': 'x86_64'}]
    assert res[1] == [bad, {'faultCode': koji.BuildError.faultCode,
                            'faultString': 'build failed'}]
    assert res[2][1]['faultString'] == 'Task %d is canceled' % gone


def test_real_base_task_handler_wait(hub, task_id, tmp_path):
    class Handler(koji.tasks.BaseTaskHandler):
        Methods = ['buildContainer']

        def handler(self, *args):
            child = self.subtask('createContainer', [], label='x')
            hub.finish_task(child, result='done')
            return self.wait([child], all=True)

    options = make_task_handler_options(tmp_path)
    handler = Handler(task_id, 'buildContainer', TASK_PARAMS, hub, options)
    assert handler.getUploadDir() == koji.pathinfo.taskrelpath(task_id)
    result = handler.run()
    assert list(result.values()) == ['done']
    assert options.allowed_scms == '' and options.allowed_scms_use_config is True


def test_subtask_hook(hub, task_id):
    seen = []
    hub.subtask_hook = lambda *args: seen.append(args)
    child = hub.host.subtask('createContainer', [1], task_id, label='a', arch='s390x')
    hub.host.subtask('createContainer', [1], task_id, label='a')
    assert seen == [(child, 'createContainer', [1], {'label': 'a', 'arch': 's390x'})]


def test_cancellation(hub, task_id):
    child = hub.host.subtask('createContainer', [], task_id, label='a')
    grandchild = hub.add_task('x', parent=child, host=False)
    build = hub.add_build('demo-1-1', state=koji.BUILD_STATES['BUILDING'], task_id=task_id)
    assert hub.cancelTask(task_id) is True
    for tid in (task_id, child, grandchild):
        assert hub.getTaskInfo(tid)['state'] == koji.TASK_STATES['CANCELED']
    assert hub.getBuild(build['id'])['state'] == koji.BUILD_STATES['CANCELED']
    for call in (lambda: hub.host.closeTask(task_id, 'r'),
                 lambda: hub.host.tagBuild(task_id, 'dest', build['id']),
                 lambda: hub.rawUpload(b'x', 0, koji.pathinfo.taskrelpath(task_id), 'a')):
        with pytest.raises(koji.ActionNotAllowed):
            call()
    closed = hub.add_task()
    hub.host.closeTask(closed, {'ok': 1})
    assert hub.cancelTask(closed) is False


def test_tag_build_rules(hub, task_id):
    hub.add_tag('dest')
    hub.add_tag('locked', locked=True)
    build = hub.add_build('demo-1-1')
    with pytest.raises(koji.TagError, match='not in list'):
        hub.host.tagBuild(task_id, 'dest', build['id'])
    hub.add_package('dest', 'demo')
    hub.add_package('locked', 'demo')
    with pytest.raises(koji.TagError, match='locked'):
        hub.host.tagBuild(task_id, 'locked', build['id'])
    building = hub.add_build('demo-1-2', state=koji.BUILD_STATES['BUILDING'])
    with pytest.raises(koji.TagError, match='not complete'):
        hub.host.tagBuild(task_id, 'dest', building['id'])
    owner = hub.getTaskInfo(task_id)['owner']
    hub.set_policy('tag', lambda data: 'allow' if data['user_id'] == owner else 'deny no')
    hub.host.tagBuild(task_id, 'dest', build['id'])
    assert hub.tagged('dest') == [build['id']]
    hub.set_policy('tag', 'deny not you')
    other = hub.add_build('demo-1-3')
    with pytest.raises(koji.ActionNotAllowed, match='policy violation'):
        hub.host.tagBuild(task_id, 'dest', other['id'])


def test_policies(hub):
    with pytest.raises(koji.GenericError):
        hub.evalPolicy('build_from_scm', {})
    assert hub.host.checkPolicy('missing', {}) == [True, 'missing policy']
    hub.set_policy('build_from_scm', lambda data: 'allow' if data.get('scratch') else
                   'deny not scratch')
    assert hub.evalPolicy('build_from_scm', {'scratch': True}) == 'allow'
    assert hub.host.checkPolicy('build_from_scm', {}) == [False, 'not scratch']
    with pytest.raises(koji.ActionNotAllowed, match='not scratch'):
        hub.host.assertPolicy('build_from_scm', {})
    hub.set_policy('scm', True)
    hub.host.assertPolicy('scm', {})


def test_real_scm_assert_allowed_uses_eval_policy(hub):
    from koji.daemon import SCM
    scm = SCM('git://scm.example.com/c/demo#abc')
    hub.set_policy('build_from_scm', 'deny nope')
    with pytest.raises(koji.BuildError, match='nope'):
        scm.assert_allowed(session=hub, by_config=False, by_policy=True,
                           policy_data={'user_id': 1})
    hub.set_policy('build_from_scm', 'allow')
    scm.assert_allowed(session=hub, by_config=False, by_policy=True)


# ---------------------------------------------------------------- fault injection, threads

def test_fail_next(hub, task_id):
    hub.fail_next('getTaskInfo', koji.RetryError('later'), count=2)
    for _ in range(2):
        with pytest.raises(koji.RetryError):
            hub.getTaskInfo(task_id)
    assert hub.getTaskInfo(task_id)['id'] == task_id
    hub.fail_next('host.subtask', koji.GenericError)
    with pytest.raises(koji.GenericError):
        hub.host.subtask('x', [], task_id)
    assert [m for m, _a, _k in hub.calls].count('getTaskInfo') == 3


def test_thread_safe_uploads(hub, task_id):
    path = koji.pathinfo.taskrelpath(task_id)

    def worker(n):
        for i in range(200):
            hub.rawUpload(b'%d\n' % i, -1 if i else 0, path, 'w%d.log' % n)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = hub.uploaded_files(task_id)
    expected = b''.join(b'%d\n' % i for i in range(200))
    assert all(files['w%d.log' % n] == expected for n in range(4))


# ---------------------------------------------------------------- content generators

def _output(hub, directory, filename, data, otype='docker-image', extra=None, arch='x86_64',
            ctype='sha256'):
    hub.rawUpload(data, 0, directory, filename, overwrite=True)
    out = {'buildroot_id': 1, 'filename': filename, 'filesize': len(data),
           'checksum': hashlib.new(ctype, data).hexdigest(), 'checksum_type': ctype,
           'type': otype, 'arch': arch}
    if extra is not None:
        out['extra'] = extra
    return out


def _metadata(hub, directory, build_id=None, name='demo', release='1', **build_extra):
    outputs = [
        _output(hub, directory, 'docker-image-sha256:aa.x86_64.tar.gz', b'placeholder',
                extra={'image': {'arch': 'x86_64'}, 'docker': {'id': 'sha256:aa'}}),
        _output(hub, directory, 'osbs-build.log', b'log\n', otype='log', arch='noarch'),
    ]
    build = {'name': name, 'version': '1.0', 'release': release,
             'source': 'git://h/r#abc', 'start_time': 1, 'end_time': 2, 'owner': 'alice',
             'extra': {'image': {}, 'container_koji_task_id': 4242}}
    build.update(build_extra)
    if build_id is not None:
        build['build_id'] = build_id
    return {'metadata_version': 0, 'build': build,
            'buildroots': [{'id': 1, 'host': {'os': None, 'arch': 'x86_64'},
                            'content_generator': {'name': CG, 'version': '0.1'},
                            'container': {'type': 'none', 'arch': 'x86_64'},
                            'tools': [], 'components': []}],
            'output': outputs}


@pytest.fixture
def cg_hub(hub):
    hub.grant_cg_access(hub.getUser()['name'], CG)
    return hub


def test_cg_access_required(hub):
    with pytest.raises(koji.AuthError, match='Content generator access required'):
        hub.CGInitBuild(CG, {'name': 'demo', 'version': '1', 'release': '1'})


def test_cg_reserve_import_with_token(cg_hub):
    hub = cg_hub
    hub.add_tag('dest')
    hub.add_package('dest', 'demo')
    res = hub.CGInitBuild(CG, {'name': 'demo', 'version': '1.0', 'release': '1'})
    assert set(res) == {'build_id', 'token'}
    assert hub.getBuild(res['build_id'])['state'] == koji.BUILD_STATES['BUILDING']
    meta = _metadata(hub, 'cg/one', build_id=res['build_id'])
    with pytest.raises(koji.GenericError, match='Token'):
        hub.CGImport(meta, 'cg/one', token='wrong')
    with pytest.raises(koji.GenericError):
        hub.CGImport(meta, 'cg/one')
    hub.rawUpload(json.dumps(meta).encode(), 0, 'cg/one', 'metadata.json')
    build = hub.CGImport('metadata.json', 'cg/one', token=res['token'])
    assert build['id'] == res['build_id'] and build['state'] == koji.BUILD_STATES['COMPLETE']
    assert build['owner_name'] == 'alice' and build['task_id'] == 4242
    assert build['extra']['typeinfo']['image'] == {} and build['extra']['image'] == {}
    assert build['cg_name'] == CG
    archives = hub.listArchives(buildID=build['id'], type='image')
    assert [(a['filename'], a['arch']) for a in archives] == \
        [('docker-image-sha256:aa.x86_64.tar.gz', 'x86_64')]
    # CGImport never tags
    assert hub.tagged('dest') == []
    with pytest.raises(koji.GenericError):
        hub.CGRefundBuild(CG, res['build_id'], res['token'])


def test_cg_refund(cg_hub):
    hub = cg_hub
    res = hub.CGInitBuild(CG, {'name': 'demo', 'version': '1.0', 'release': '2'})
    with pytest.raises(koji.GenericError):
        hub.CGRefundBuild(CG, res['build_id'], res['token'], koji.BUILD_STATES['COMPLETE'])
    with pytest.raises(koji.GenericError, match='Token'):
        hub.CGRefundBuild(CG, res['build_id'], 'nope')
    hub.CGRefundBuild(CG, res['build_id'], res['token'], koji.BUILD_STATES['CANCELED'])
    assert hub.getBuild(res['build_id'])['state'] == koji.BUILD_STATES['CANCELED']
    # a CANCELED unused row is reused with the same id
    again = hub.CGInitBuild(CG, {'name': 'demo', 'version': '1.0', 'release': '2'})
    assert again['build_id'] == res['build_id']


@pytest.mark.parametrize('state,init_msg,import_msg', [
    ('reserved', 'Build is already reserved', 'Build already exists'),
    ('BUILDING', 'Build already in progress', 'Build already exists'),
    ('COMPLETE', 'Build already exists', 'Build already exists'),
    ('DELETED', 'Build already exists', 'Build already exists'),
    ('FAILED', None, None),
    ('CANCELED', None, None),
])
def test_duplicate_nvr_table(cg_hub, state, init_msg, import_msg):
    hub = cg_hub
    nvr = {'name': 'demo', 'version': '1.0', 'release': '1'}
    if state == 'reserved':
        old = hub.getBuild(hub.CGInitBuild(CG, nvr)['build_id'])
    else:
        old = hub.add_build('demo-1.0-1', state=koji.BUILD_STATES[state], task_id=7)
    if init_msg:
        with pytest.raises(koji.GenericError, match=init_msg):
            hub.CGInitBuild(CG, nvr)
        with pytest.raises(koji.GenericError, match=import_msg):
            hub.CGImport(_metadata(hub, 'cg/dup'), 'cg/dup')
    else:
        build = hub.CGImport(_metadata(hub, 'cg/dup'), 'cg/dup')
        assert build['id'] == old['id']


def test_failed_build_with_tag_history_is_not_reused(cg_hub):
    hub = cg_hub
    hub.add_tag('t')
    hub.add_build('demo-1.0-1', state=koji.BUILD_STATES['FAILED'], tags=['t'])
    with pytest.raises(koji.GenericError, match='tag history'):
        hub.CGImport(_metadata(hub, 'cg/x'), 'cg/x')


def _break(meta, how):
    out = meta['output'][0]
    if how == 'version':
        meta['metadata_version'] = 1
    elif how == 'dash':
        meta['build']['release'] = '1-2'
    elif how == 'size':
        out['filesize'] += 1
    elif how == 'checksum':
        out['checksum'] = '0' * 64
    elif how == 'sha1':
        out['checksum_type'] = 'sha1'
    elif how == 'no_build_image':
        del meta['build']['extra']['image']
    elif how == 'both_ways':
        meta['build']['extra']['typeinfo'] = {'image': {}}
    elif how == 'unknown_btype':
        meta['build']['extra']['typeinfo'] = {'icm': {}}
    elif how == 'two_btypes':
        out['extra']['typeinfo'] = {'image': {}}
    elif how == 'extension':
        meta['output'][0]['filename'] = 'image.bin'
    elif how == 'missing_file':
        out['filename'] = 'nothere.tar.gz'
    elif how == 'unused_buildroot':
        meta['buildroots'].append(dict(meta['buildroots'][0], id=2))
    elif how == 'two_cgs':
        br = dict(meta['buildroots'][0], id=2,
                  content_generator={'name': 'other', 'version': '1'})
        meta['buildroots'].append(br)
        meta['output'][1]['buildroot_id'] = 2
    elif how == 'owner':
        meta['build']['owner'] = 'nobody'
    elif how == 'task_mismatch':
        meta['build']['task_id'] = 1
    elif how == 'dup_log':
        meta['output'].append(dict(meta['output'][1]))
    elif how == 'build_id_no_token':
        meta['build']['build_id'] = 1
    return meta


@pytest.mark.parametrize('how', ['version', 'dash', 'size', 'checksum', 'sha1',
                                 'no_build_image', 'both_ways', 'unknown_btype', 'two_btypes',
                                 'extension', 'missing_file', 'unused_buildroot', 'two_cgs',
                                 'owner', 'task_mismatch', 'dup_log', 'build_id_no_token'])
def test_cg_import_refusals(cg_hub, how):
    meta = _break(_metadata(cg_hub, 'cg/bad'), how)
    with pytest.raises(koji.GenericError):
        cg_hub.CGImport(meta, 'cg/bad')
    assert cg_hub.getBuild('demo-1.0-1') is None or how == 'build_id_no_token'


@pytest.mark.parametrize('path', [('build', 'source'), ('build', 'extra'),
                                  ('output', 0, 'extra', 'image', 'arch'),
                                  ('buildroots', 0, 'tools'), ('output', 0, 'checksum')])
def test_cg_import_missing_key_is_fault_1(cg_hub, path):
    meta = _metadata(cg_hub, 'cg/key')
    node = meta
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    with pytest.raises(xmlrpc.client.Fault) as exc:
        cg_hub.CGImport(meta, 'cg/key')
    assert exc.value.faultCode == 1 and 'KeyError' in exc.value.faultString


def test_cg_import_policy_and_json_string(cg_hub):
    cg_hub.set_policy('cg_import', 'deny no imports')
    meta = _metadata(cg_hub, 'cg/pol')
    with pytest.raises(koji.ActionNotAllowed, match='cg_import'):
        cg_hub.CGImport(json.dumps(meta), 'cg/pol')
    cg_hub.set_policy('cg_import', 'allow')
    assert cg_hub.CGImport(json.dumps(meta), 'cg/pol')['nvr'] == 'demo-1.0-1'
