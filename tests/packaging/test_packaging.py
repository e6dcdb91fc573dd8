"""Packaging: the sdist carries what the spec needs, the wheel lays out the CLI plugin
where the koji CLI looks, and rpmbuild turns the sdist into the four RPMs.

rpmbuild here is Debian's: it has no python-rpm-macros or pyproject-rpm-macros, so
FEDORA_MACROS below stand in for them (same commands, same install layout).
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

import koji_containerbuild

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERSION = koji_containerbuild.__version__
NAME = 'koji-containerbuild'

# Top-level working-tree entries that are not part of the source (venv, build output).
NOT_SOURCE = {'.venv', '.git', 'build', 'dist', 'out', '.hypothesis', '.pytest_cache',
              '.tox', '.mypy_cache'}
# Files a newcomer or the spec needs in every sdist, whoever writes them.
SDIST_REQUIRED = [
    'README.md', 'LICENSE', 'MANIFEST.in', 'setup.py', 'koji-containerbuild.spec',
    'hub/hub_containerbuild.py', 'hub/hub_containerbuild.conf',
    'builder/builder_containerbuild.py', 'builder/builder_containerbuild.conf',
    'cli/cli_containerbuild.py', 'docs/options.md', 'docs/packaging.md',
]
# Working-tree folders whose every file must reach the sdist.
SDIST_FOLDERS = ['koji_containerbuild', 'hub', 'builder', 'cli', 'docs', 'examples', 'tests']


# setup.py install_requires -> the Fedora package the spec's main package must Require.
MAIN_REQUIRES = {'koji': 'python3-koji', 'jsonschema': 'python3-jsonschema',
                 'PyYAML': 'python3-pyyaml', 'requests': 'python3-requests'}


def _spec_requires(package):
    """Requires: lines of one package in the spec ('' = the main package)."""
    with open(os.path.join(ROOT, NAME + '.spec')) as f:
        text = f.read()
    sections = re.split(r'^%package\s+(\S+)\s*$', text, flags=re.M)
    body = sections[0] if not package else sections[sections.index(package) + 1]
    body = re.split(r'^%description', body, flags=re.M)[0]
    return set(m.strip() for m in re.findall(r'^Requires:\s*(.+)$', body, flags=re.M))


def test_spec_main_package_requires_what_setup_py_installs():
    import ast
    with open(os.path.join(ROOT, 'setup.py')) as f:
        tree = ast.parse(f.read())
    install_requires = [ast.literal_eval(k.value) for n in ast.walk(tree)
                        if isinstance(n, ast.Call) for k in n.keywords
                        if k.arg == 'install_requires'][0]
    names = set(re.split(r'[<>=!~ ;\[]', r, 1)[0] for r in install_requires)
    assert names == set(MAIN_REQUIRES), 'update MAIN_REQUIRES for %s' % sorted(names)
    spec = set(re.split(r'\s', r, 1)[0] for r in _spec_requires(''))
    assert spec == set(MAIN_REQUIRES.values())


def test_spec_declares_the_minimum_koji_everywhere():
    import ast
    with open(os.path.join(ROOT, 'setup.py')) as f:
        tree = ast.parse(f.read())
    install_requires = [ast.literal_eval(k.value) for n in ast.walk(tree)
                        if isinstance(n, ast.Call) for k in n.keywords
                        if k.arg == 'install_requires'][0]
    with open(os.path.join(ROOT, NAME + '.spec')) as f:
        spec = f.read()
    minimum = re.search(r'^%global min_koji (\S+)$', spec, re.M).group(1)
    assert 'koji>=%s' % minimum in install_requires
    assert 'python3-koji >= %{min_koji}' in _spec_requires('')
    assert 'koji-hub >= %{min_koji}' in _spec_requires('hub')
    assert 'koji-builder >= %{min_koji}' in _spec_requires('builder')


def _python_sitelib():
    import sysconfig
    return sysconfig.get_path('purelib', vars={'base': '/usr'})


SITELIB = _python_sitelib()
PY = sys.executable
# Fedora's shebang fixer (brp-mangle-shebangs) stand-in: this venv's python writes its
# own path into scripts, Fedora's /usr/bin/python3 would not.
FIX_SHEBANGS = "sed -i '1s|^#!.*python.*|#!/usr/bin/python3|' %{buildroot}%{_bindir}/*"
FEDORA_MACROS = {
    'python3': PY,
    '__python3': PY,
    'python3_sitelib': SITELIB,
    'python3_sitearch': SITELIB,
    'py3_build': '%{python3} setup.py build --executable=/usr/bin/python3',
    'py3_install': ('%{python3} setup.py install -O1 --skip-build --root %{buildroot} '
                    '--prefix %{_prefix} --install-lib %{python3_sitelib} '
                    '--install-scripts %{_bindir} && ' + FIX_SHEBANGS),
    '_pyproject_wheeldir': 'pyproject-wheeldir',
    'pyproject_wheel': ('%{python3} -m pip wheel --wheel-dir %{_pyproject_wheeldir} '
                        '--no-deps --use-pep517 --no-build-isolation --no-index '
                        '--disable-pip-version-check --no-clean --progress-bar off .'),
    'pyproject_install': ('%{python3} -m pip install --root %{buildroot} --prefix %{_prefix} '
                          '--no-deps --ignore-installed --no-warn-script-location --no-index '
                          '--disable-pip-version-check --no-cache-dir --progress-bar off '
                          '%{_pyproject_wheeldir}/*.whl && ' + FIX_SHEBANGS),
    'py_byte_compile()': '%1 -m compileall -q -f -o 0 -o 1 -s %{buildroot} -p / %2',
}


def run(cmd, cwd=None, env=None):
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert proc.returncode == 0, '%s failed (%d):\n%s' % (
        ' '.join(cmd), proc.returncode, proc.stdout[-6000:])
    return proc.stdout


def git_files(folder, *how):
    out = run(['git', 'ls-files', '-z', '--exclude-standard'] + list(how) + ['--', folder],
              cwd=ROOT)
    return [f for f in out.split('\0') if f and os.path.isfile(os.path.join(ROOT, f))]


def source_files(folder):
    """Source files under a working-tree folder (tracked or new, not git-ignored)."""
    return git_files(folder, '--cached', '--others')


def ignored_files(folder):
    """Generated files (git-ignored) under a folder: they must stay out of the sdist."""
    return [f for f in git_files(folder, '--others', '--ignored')
            if '__pycache__' not in f and not f.endswith('.pyc')]


def library_modules():
    return [p for p in source_files('koji_containerbuild') if p.endswith('.py')]


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    """A copy of the working tree, so builds never write into the repository."""
    dst = str(tmp_path_factory.mktemp('tree') / 'src')

    def ignore(directory, names):
        skip = {n for n in names if n.endswith(('.egg-info', '.pyc')) or n == '__pycache__'}
        if os.path.samefile(directory, ROOT):
            skip |= NOT_SOURCE & set(names)
        return skip

    shutil.copytree(ROOT, dst, symlinks=True, ignore=ignore)
    return dst


@pytest.fixture(scope='module')
def sdist(tree, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('sdist'))
    run([PY, 'setup.py', '-q', 'sdist', '--dist-dir', out], cwd=tree)
    (name,) = os.listdir(out)
    return os.path.join(out, name)


def sdist_members(path):
    with tarfile.open(path) as tar:
        names = tar.getnames()
    top = names[0].split('/')[0]
    return top, set(n[len(top) + 1:] for n in names if n.startswith(top + '/'))


@pytest.mark.slow
def test_sdist_has_everything_the_spec_and_a_newcomer_need(sdist):
    top, members = sdist_members(sdist)
    assert re.match(r'^koji[-_]containerbuild-%s$' % re.escape(VERSION), top)
    missing = [f for f in SDIST_REQUIRED if f not in members]
    assert not missing, 'sdist lacks %s' % missing
    for folder in SDIST_FOLDERS:
        files = source_files(folder)
        assert files, 'working tree has no %s/' % folder
        lost = sorted(f for f in files if f not in members)
        assert not lost, 'sdist lacks %s' % lost
        generated = sorted(f for f in ignored_files(folder) if f in members)
        assert not generated, 'sdist carries git-ignored files %s' % generated
    assert not [m for m in members if m.endswith('.pyc') or m.startswith(('.venv', '.git/'))]


@pytest.mark.slow
def test_wheel_puts_cli_plugin_into_koji_cli_plugins(tree, tmp_path):
    run([PY, 'setup.py', '-q', 'bdist_wheel', '--dist-dir', str(tmp_path)], cwd=tree)
    (whl,) = [n for n in os.listdir(str(tmp_path)) if n.endswith('.whl')]
    assert whl.endswith('-py3-none-any.whl')
    with zipfile.ZipFile(str(tmp_path / whl)) as zf:
        names = set(zf.namelist())
        info = [n for n in names if n.endswith('.dist-info/entry_points.txt')]
        entry_points = zf.read(info[0]).decode() if info else ''
    assert 'koji_cli_plugins/cli_containerbuild.py' in names
    # koji loads every *.py in koji_cli_plugins/: nothing else may land there.
    assert sorted(n for n in names if n.startswith('koji_cli_plugins/')) == \
        ['koji_cli_plugins/cli_containerbuild.py']
    for module in library_modules():
        assert module.replace(os.sep, '/') in names, 'wheel lacks %s' % module
    assert not [n for n in names if n.startswith(('tests/', 'hub/', 'builder/', 'cli/'))]
    assert re.search(r'koji-containerbuild\s*=\s*koji_containerbuild\.local\.cli:main',
                     entry_points)
    assert any(n.endswith('.dist-info/LICENSE') for n in names)


def test_spec_version_matches_library():
    with open(os.path.join(ROOT, 'koji-containerbuild.spec')) as f:
        spec = f.read()
    assert re.search(r'^Version:\s*%s\s*$' % re.escape(VERSION), spec, re.M), \
        'koji-containerbuild.spec Version differs from koji_containerbuild.__version__'


def rpmbuild(sdist, workdir, variant):
    """rpmbuild -ba the spec found inside the sdist; return {subpackage: rpm path}."""
    top, _members = sdist_members(sdist)
    topdir = os.path.join(workdir, 'rpmbuild')
    os.makedirs(os.path.join(topdir, 'SOURCES'))
    os.makedirs(os.path.join(workdir, 'tmp'))
    shutil.copy(sdist, os.path.join(topdir, 'SOURCES'))
    with tarfile.open(sdist) as tar:
        spec_text = tar.extractfile(top + '/koji-containerbuild.spec').read()
    spec = os.path.join(workdir, 'koji-containerbuild.spec')
    with open(spec, 'wb') as f:
        f.write(spec_text)
    defines = dict(FEDORA_MACROS)
    defines.update({'_topdir': topdir, '_tmppath': os.path.join(workdir, 'tmp'),
                    'sdist_name': top[:-len('-' + VERSION)]})
    cmd = ['rpmbuild', '-ba', '--nodeps', '--with' if variant == 'pyproject' else '--without',
           'pyproject']
    for name, value in defines.items():
        cmd += ['--define', '%s %s' % (name, value)]
    cmd.append(spec)
    env = dict(os.environ, HOME=workdir, PIP_NO_CACHE_DIR='1')
    # A Fedora build root compiles bytecode; this session may have turned it off.
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    run(cmd, cwd=workdir, env=env)
    rpms = {}
    for name in os.listdir(os.path.join(topdir, 'RPMS', 'noarch')):
        m = re.match(r'^koji-containerbuild(-hub|-builder-osbs|-builder-native|-builder|-cli)?'
                     r'-%s-' % re.escape(VERSION), name)
        assert m, 'unexpected RPM %s' % name
        rpms[(m.group(1) or '-main')[1:]] = os.path.join(topdir, 'RPMS', 'noarch', name)
    srpms = os.listdir(os.path.join(topdir, 'SRPMS'))
    assert len(srpms) == 1 and srpms[0].endswith('.src.rpm')
    return rpms


def rpm_query(path, *args):
    return run(['rpm', '-qp'] + list(args) + [path]).splitlines()


def check_plugin(files, plugin_dir, plugin, conf_dir, conf):
    """A -hub/-builder file list: plugin, its bytecode, its config; nothing else."""
    pyc = re.compile(r'^%s/__pycache__/%s\.cpython-\d+(\.opt-\d)?\.pyc$'
                     % (re.escape(plugin_dir), plugin))
    assert [f for f in files if pyc.match(f)], 'no bytecode for %s' % plugin
    assert sorted(f for f in files if not pyc.match(f)) == sorted([
        conf_dir, conf_dir + '/' + conf, plugin_dir, plugin_dir + '/__pycache__',
        plugin_dir + '/' + plugin + '.py'])


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['setuptools', 'pyproject'])
def test_rpmbuild_from_sdist(sdist, tmp_path, variant):
    rpms = rpmbuild(sdist, str(tmp_path), variant)
    assert sorted(rpms) == ['builder', 'builder-native', 'builder-osbs', 'cli', 'hub', 'main']
    files = dict((k, [f for f in rpm_query(p, '-l') if f != '(contains no files)'])
                 for k, p in rpms.items())
    requires = dict((k, set(r.strip() for r in rpm_query(p, '--requires')))
                    for k, p in rpms.items())
    evr = rpm_query(rpms['main'], '--qf', '%{VERSION}-%{RELEASE}')[0]
    for path in rpms.values():
        assert rpm_query(path, '--qf', '%{ARCH}') == ['noarch']

    # No file in two packages; nothing of the build host leaks into a Requires.
    every = [f for fl in files.values() for f in fl]
    assert len(every) == len(set(every))
    for key, reqs in requires.items():
        assert not [r for r in reqs if r.startswith('/') and r != '/usr/bin/python3'], key

    main = set(files['main'])
    lib = SITELIB + '/koji_containerbuild'
    doc = '/usr/share/doc/%s-%s' % (NAME, VERSION)
    expected = {'/usr/bin/koji-containerbuild', doc + '/README.md',
                doc + '/docs/options.md', doc + '/docs/packaging.md',
                '/usr/share/licenses/%s-%s/LICENSE' % (NAME, VERSION)}
    expected |= {lib + '/' + os.path.relpath(m, 'koji_containerbuild').replace(os.sep, '/')
                 for m in library_modules()}
    assert not expected - main, 'main RPM lacks %s' % sorted(expected - main)
    assert [f for f in main if f.startswith(doc + '/examples/')]
    info = re.compile(r'^%s/koji_containerbuild-%s[-.\w]*\.(egg|dist)-info(/|$)'
                      % (re.escape(SITELIB), re.escape(VERSION)))
    strays = [f for f in main if not (f == lib or f.startswith(lib + '/') or info.match(f)
                                      or f.startswith((doc, '/usr/share/licenses/'))
                                      or f == '/usr/bin/koji-containerbuild')]
    assert not strays, 'unexpected files in the main RPM: %s' % strays
    assert set(MAIN_REQUIRES.values()) - {'python3-koji'} | {'/usr/bin/python3'} <= \
        requires['main']
    assert 'python3-koji >= 1.35' in requires['main']

    check_plugin(files['hub'], '/usr/lib/koji-hub-plugins', 'hub_containerbuild',
                 '/etc/koji-hub/plugins', 'hub_containerbuild.conf')
    check_plugin(files['builder'], '/usr/lib/koji-builder-plugins', 'builder_containerbuild',
                 '/etc/kojid/plugins', 'builder_containerbuild.conf')
    cli_dir = SITELIB + '/koji_cli_plugins'
    cli_pyc = re.compile(r'^%s/__pycache__/cli_containerbuild\.cpython-\d+(\.opt-\d)?\.pyc$'
                         % re.escape(cli_dir))
    assert [f for f in files['cli'] if cli_pyc.match(f)]
    assert sorted(f for f in files['cli'] if not cli_pyc.match(f)) == sorted([
        cli_dir, cli_dir + '/__pycache__', cli_dir + '/cli_containerbuild.py'])

    own = '%s = %s' % (NAME, evr)
    assert {own, 'koji-hub >= 1.35'} <= requires['hub']
    assert {own, 'koji-builder >= 1.35'} <= requires['builder']
    # one backend per builder: its tool comes with its own (file-less) subpackage
    assert not [r for r in requires['builder'] if r.startswith(('osbs-client', 'buildah'))]
    assert {'%s-builder = %s' % (NAME, evr), 'osbs-client'} <= requires['builder-osbs']
    assert {'%s-builder = %s' % (NAME, evr), 'buildah'} <= requires['builder-native']
    assert files['builder-osbs'] == [] and files['builder-native'] == []
    assert {own, 'koji'} <= requires['cli']

    # Configs are %config(noreplace): RPMFILE_CONFIG (1) | RPMFILE_NOREPLACE (16).
    for key, conf in (('hub', '/etc/koji-hub/plugins/hub_containerbuild.conf'),
                      ('builder', '/etc/kojid/plugins/builder_containerbuild.conf')):
        flags = dict(line.rsplit(' ', 1) for line in
                     rpm_query(rpms[key], '--qf', '[%{FILENAMES} %{FILEFLAGS}\n]'))
        assert int(flags[conf]) & 17 == 17, '%s is not %%config(noreplace)' % conf
