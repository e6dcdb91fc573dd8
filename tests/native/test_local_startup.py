"""The local command starts fast: before its first buildah call it imports neither koji
nor requests nor rpm (benchmarks/native_overhead prints the time), and its faults are
still one-line errors; everywhere else the faults stay koji.GenericError subclasses."""

import json
import os
import subprocess
import sys

import koji

from koji_containerbuild import errors
from koji_containerbuild.local import cli, faults

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAVY = ('koji', 'requests', 'rpm', 'gssapi')

# Runs the command as its own program (cli.main() without argv) up to a stand-in buildah
# that fails, then reports what the process had imported and how the faults were built.
PROGRAM = r'''
import json, sys
from koji_containerbuild.local import cli
codes, loaded = [], []
for argv in ARGVS:
    sys.argv = ['koji-containerbuild'] + argv
    codes.append(cli.main())
    loaded.append([m for m in HEAVY if m in sys.modules])
from koji_containerbuild import errors
print(json.dumps({'codes': codes, 'loaded': loaded,
                  'bases': [c.__name__ for c in errors.SourceError.__mro__],
                  'fault_code': errors.OptionError.faultCode}))
'''


def _program(tmp_path, argvs):
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'buildah').write_text('#!/bin/sh\necho "stand-in buildah ran" >&2\nexit 1\n')
    (fake / 'buildah').chmod(0o755)
    env = dict(os.environ, PATH='%s:%s' % (fake, os.environ['PATH']))
    code = PROGRAM.replace('ARGVS', repr(argvs)).replace('HEAVY', repr(HEAVY))
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return json.loads(proc.stdout), proc.stderr.decode()


def test_program_reaches_buildah_without_koji_requests_rpm(tmp_path):
    ctx = tmp_path / 'ctx'
    ctx.mkdir()
    (ctx / 'Dockerfile').write_text(
        'FROM scratch\nLABEL com.redhat.component=c-container name=ns/c version=1 '
        'release=1\n')
    out = str(tmp_path / 'out')
    report, err = _program(tmp_path, [
        ['build', '-q', '--output-dir', out, str(ctx)],
        ['build', '--target', 'bad target', '--output-dir', out, str(ctx)],
        # a git source: its fetch imports koji (koji.daemon) after the faults exist
        ['build', '--output-dir', out, 'git://127.0.0.1:1/nothing.git#main']])
    assert report['loaded'][:2] == [[], []]
    assert 'koji' in report['loaded'][2]
    # the stand-in buildah's failure, a bad option, a failed fetch: one line each, rc 1
    assert report['codes'] == [1, 1, 1]
    lines = err.splitlines()
    assert lines[0].startswith('koji-containerbuild: error: buildah build for ')
    assert 'stand-in buildah ran' in lines[0]
    assert lines[1].startswith("koji-containerbuild: error: Invalid --target 'bad target'")
    assert lines[2].startswith('koji-containerbuild: error: ')
    assert len(lines) == 3 and 'Traceback' not in err
    # the koji-free copies, with koji's class names and fault codes
    assert report['bases'] == ['SourceError', 'BuildError', 'GenericError', 'Exception',
                               'BaseException', 'object']
    assert report['fault_code'] == koji.ParameterError.faultCode


def test_import_of_the_command_loads_no_heavy_module():
    code = ('import sys; import koji_containerbuild.local.cli; '
            'print([m for m in %r if m in sys.modules])' % (HEAVY,))
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, check=True, timeout=60,
                         stdout=subprocess.PIPE).stdout
    assert out.strip() == b'[]'


def test_faults_stay_koji_errors_when_koji_is_loaded_first():
    """A process that imported koji (hub, kojid, koji CLI) never gets the copies, even if
    it asks for them."""
    code = ('import koji; from koji_containerbuild.local import faults; '
            'asked = faults.use(); from koji_containerbuild import errors; '
            'print(asked, issubclass(errors.SourceError, koji.BuildError))')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, check=True, timeout=60,
                         stdout=subprocess.PIPE).stdout
    assert out.split() == [b'False', b'True']


def test_faults_here_are_koji_errors():
    """This process imported koji first, like hub and builder: the faults are koji's."""
    assert issubclass(errors.OptionError, koji.ParameterError)
    assert issubclass(errors.PermissionDenied, koji.ActionNotAllowed)
    assert issubclass(errors.ConfigError, koji.ConfigurationError)
    for cls in (errors.SourceError, errors.BuildCheckError, errors.BackendError,
                errors.BuildCanceled):
        assert issubclass(cls, koji.BuildError)
    assert faults.use() is False
    assert koji.GenericError in cli._fault_types()


def test_copies_match_koji():
    for name in ('GenericError', 'ActionNotAllowed', 'BuildError', 'ParameterError',
                 'ConfigurationError'):
        copy, real = getattr(faults, name), getattr(koji, name)
        assert copy.faultCode == real.faultCode, name
        for args in (('text',), ({'args': ['from a fault']},), (), (1, 2)):
            assert str(copy(*args)) == str(real(*args)), (name, args)


def test_canonical_arches_need_no_koji():
    for arch in cli.CANONICAL_ARCHES:
        assert koji.canonArch(arch) == arch
        assert cli._canon_arch(arch) == arch
    assert cli._canon_arch('i686') == koji.canonArch('i686') == 'i386'
    assert cli._canon_arch('armv7hl') == koji.canonArch('armv7hl') == 'armhfp'
