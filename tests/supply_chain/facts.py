"""A synthetic ArchResult (what native_build.build_arch returns) for the pure tests and
the benchmark: `n` RPMs, a multi-stage parent set."""

D = 'sha256:' + '1' * 64
CONFIG = 'sha256:' + '2' * 64
PARENT = 'sha256:' + '3' * 64
BUILDER = 'sha256:' + '4' * 64
LICENSES = ('MIT', 'GPL-2.0-or-later AND LGPL-2.1-or-later', 'GPLv2+ and LGPLv2+',
            '(MIT OR Apache-2.0) AND BSD-3-Clause', 'GPL-3.0-or-later WITH GCC-exception-3.1',
            None, 'Public Domain')


def arch_result(n=3, arch='x86_64', registry='127.0.0.1:5000', signed=True):
    components = []
    licenses = {}
    for i in range(n):
        comp = {'type': 'rpm', 'name': 'pkg%04d' % i, 'version': '1.%d' % i,
                'release': '%d.fc40' % (i % 7), 'epoch': (i % 3) or None,
                'arch': 'x86_64' if i % 2 else 'noarch', 'sigmd5': '%032x' % (i * 7919),
                'signature': ('199e2f91fd431d51' if signed and i % 4 else None)}
        components.append(comp)
        licenses['%s-%s-%s.%s' % (comp['name'], comp['version'], comp['release'],
                                  comp['arch'])] = LICENSES[i % len(LICENSES)]
    return {
        'arch': arch, 'goarch': 'amd64' if arch == 'x86_64' else 'arm64',
        'image_id': CONFIG, 'config_digest': CONFIG, 'manifest_digest': D,
        'manifest_media_type': 'application/vnd.docker.distribution.manifest.v2+json',
        'manifest_size': 1234, 'components': components, 'rpm_licenses': licenses,
        'registry': registry, 'repository': 'acme/app',
        'repositories': ['%s/acme/app:t-1-%s' % (registry, arch),
                         '%s/acme/app@%s' % (registry, D)],
        'tags': ['t-1-%s' % arch], 'parent_id': 'sha256:' + '5' * 64,
        'parent_images': ['golang:1.22', 'acme/base:1.0-1'],
        'parent_pullspecs': {'acme/base:1.0-1': '%s/acme/base:1.0-1' % registry},
        'parent_pinned': {'acme/base:1.0-1': '%s/acme/base@%s' % (registry, PARENT)},
        'buildroot': {'tools': [{'name': 'buildah', 'version': '1.28.2'},
                                {'name': 'koji-containerbuild', 'version': '2.0.0'}]},
        'started': 1714555812, 'finished': 1714556990,
        'supply_chain': {'koji_repo': {'url': 'http://koji.example.com/kojifiles/repos/'
                                              'f40-build/77/x86_64/',
                                       'repo_id': 77, 'build_tag': 'f40-build'},
                         'yum_repos': [{'url': 'https://repos.example.com/extra.repo',
                                        'sha256': 'ab' * 32}]},
    }


IDENTITY = {'component': 'app-container', 'name': 'acme/app', 'version': '1.0',
            'release': '3', 'nvr': 'app-container-1.0-3'}
BUILD = {'builder_id': 'https://koji.example.com/kojihub#task=4242',
         'hub': 'https://koji.example.com/kojihub', 'arch_tasks': {'x86_64': 4243},
         'source': 'git+https://git.example.com/app#' + 'c' * 40, 'commit': 'c' * 40,
         'target': 'f40-container-candidate', 'dockerfile': 'Dockerfile',
         'options': {'scratch': False}, 'internal': {'nvr': 'app-container-1.0-3',
                                                     'task_id': 4242}}
PARENT_BUILDS = {'127.0.0.1:5000/acme/base:1.0-1': {'id': 17, 'nvr': 'base-container-1.0-1'},
                 'docker.io/library/golang:1.22': None, 'golang:1.22': None}
