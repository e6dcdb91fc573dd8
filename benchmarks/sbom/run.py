#!/usr/bin/env python3
"""SBOM + provenance generation for an image with 2,000 RPMs: time and memory.

Builds (once, cached in --workdir) a real rpmdb of N RPMs: one rpmbuild run of a spec
with N empty noarch subpackages (licenses varied: SPDX expressions and old-style
names), installed with `rpm --justdb` into an image-like root. Then, in this process:

  1. rpmdb read: rpmdb.rpm_components_and_licenses(root), what the pipeline runs on every
     image (the license is the one tag the supply chain adds to that read);
  2. generation: supply_chain.documents(...) for that ArchResult, i.e. both documents
     rendered to bytes (the work the SBOM/provenance feature adds to a build).

Prints the median of --runs runs of each, and the peak of Python allocations during
generation (tracemalloc) plus the process's RSS growth. Targets: generation <= 0.5 s and
<= 50 MiB.

usage: .venv/bin/python benchmarks/sbom/run.py [--rpms 2000] [--runs 7] [--workdir DIR]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from koji_containerbuild import rpmdb, supply_chain  # noqa: E402

LICENSES = ('MIT', 'GPL-2.0-or-later AND LGPL-2.1-or-later', 'GPLv2+ and LGPLv2+',
            '(MIT OR Apache-2.0) AND BSD-3-Clause', 'Public Domain', 'BSD')


def make_rpmdb(workdir, count):
    root = os.path.join(workdir, 'root-%d' % count)
    if os.path.isdir(os.path.join(root, 'var/lib/rpm')):
        return root
    top = os.path.join(workdir, 'rpmbuild')
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(os.path.join(top, 'SPECS'))
    spec = os.path.join(top, 'SPECS', 'bench.spec')
    with open(spec, 'w') as f:
        f.write('Name: kcb-bench\nVersion: 1.0\nRelease: 1\nSummary: bench\n'
                'License: MIT\nBuildArch: noarch\n%description\nbench\n')
        for i in range(count):
            name = 'kcb-bench-pkg%04d' % i
            f.write('%%package -n %s\nSummary: bench\nLicense: %s\nVersion: %d.%d\n'
                    '%%description -n %s\nbench\n%%files -n %s\n'
                    % (name, LICENSES[i % len(LICENSES)], 1 + i % 5, i, name, name))
    subprocess.run(['rpmbuild', '-bb', '--quiet', '--define', '_topdir %s' % top,
                    '--define', '_build_id_links none', spec], check=True,
                   stdout=subprocess.DEVNULL)
    rpms_dir = os.path.join(top, 'RPMS', 'noarch')
    rpms = sorted(os.path.join(rpms_dir, n) for n in os.listdir(rpms_dir))
    tmp_root = root + '.new'
    shutil.rmtree(tmp_root, ignore_errors=True)
    os.makedirs(os.path.join(tmp_root, 'var/lib/rpm'))
    subprocess.run(['rpm', '--root', tmp_root, '--dbpath', '/var/lib/rpm', '-i', '--justdb',
                    '--nodeps', '--noscripts', '--ignorearch'] + rpms, check=True,
                   stdout=subprocess.DEVNULL)
    os.rename(tmp_root, root)
    shutil.rmtree(top, ignore_errors=True)
    return root


def arch_result(components, licenses):
    digest = 'sha256:' + '1' * 64
    return {
        'arch': 'x86_64', 'goarch': 'amd64', 'image_id': 'sha256:' + '2' * 64,
        'config_digest': 'sha256:' + '2' * 64, 'manifest_digest': digest,
        'manifest_media_type': 'application/vnd.docker.distribution.manifest.v2+json',
        'manifest_size': 1234, 'components': components, 'rpm_licenses': licenses,
        'registry': 'registry.example.com', 'repository': 'acme/bench',
        'parent_images': ['acme/base:1.0-1'],
        'parent_pullspecs': {'acme/base:1.0-1': 'registry.example.com/acme/base:1.0-1'},
        'parent_pinned': {'acme/base:1.0-1': 'registry.example.com/acme/base@sha256:' + '3' * 64},
        'buildroot': {'tools': [{'name': 'buildah', 'version': '1.28.2'}]},
        'started': 1714555812, 'finished': 1714556990,
        'supply_chain': {'koji_repo': {'url': 'https://koji.example.com/kojifiles/repos/'
                                              'b/7/x86_64/',
                                       'repo_id': 7, 'build_tag': 'b'}, 'yum_repos': []},
    }


IDENTITY = {'component': 'bench-container', 'name': 'acme/bench', 'version': '1.0',
            'release': '1', 'nvr': 'bench-container-1.0-1'}
BUILD = {'builder_id': 'https://koji.example.com/kojihub#task=1', 'source':
         'git+https://git.example.com/bench#' + 'c' * 40, 'commit': 'c' * 40,
         'target': 'bench-candidate', 'dockerfile': 'Dockerfile', 'options': {}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rpms', type=int, default=2000)
    parser.add_argument('--runs', type=int, default=7)
    parser.add_argument('--workdir', help='keep the generated rpmdb here (default: temp)')
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix='kcb-sbom-bench-')
    os.makedirs(workdir, exist_ok=True)
    try:
        started = time.perf_counter()
        root = make_rpmdb(workdir, args.rpms)
        print('rpmdb with %d RPMs ready in %.1f s (%s)' % (args.rpms,
                                                          time.perf_counter() - started, root))
        reads, gens = [], []
        for _run in range(args.runs):
            t0 = time.perf_counter()
            components, licenses = rpmdb.rpm_components_and_licenses(root)
            t1 = time.perf_counter()
            docs = supply_chain.documents([arch_result(components, licenses)], IDENTITY, BUILD,
                                          parent_image_builds={})
            t2 = time.perf_counter()
            reads.append(t1 - t0)
            gens.append(t2 - t1)
        assert len(components) == args.rpms, len(components)
        sizes = [len(data) for _name, data in supply_chain.files(docs)]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        supply_chain.documents([arch_result(components, licenses)], IDENTITY, BUILD,
                               parent_image_builds={})
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        gen = statistics.median(gens)
        print('RPMs: %d; SBOM %d bytes, provenance %d bytes' % (len(components), sizes[0],
                                                               sizes[1]))
        print('rpmdb read (components + licenses), median of %d: %.3f s'
              % (args.runs, statistics.median(reads)))
        print('generation (SBOM + provenance, to bytes), median of %d: %.3f s  (target <= 0.5 s)'
              % (args.runs, gen))
        print('generation peak Python allocations: %.1f MiB  (target <= 50 MiB)'
              % (peak / 1048576.0))
        print('process peak RSS: %.1f MiB (grew %.1f MiB during the traced run)'
              % (rss_after / 1024.0, (rss_after - rss_before) / 1024.0))
        return 0 if gen <= 0.5 and peak <= 50 * 1048576 else 1
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
