"""`koji-containerbuild build`: build an image like a Koji builder would, on this machine.

Runs the same checks and the same per-arch pipeline as the native Koji backend (labels
and NVR, buildah build with the Koji labels, push by unique tag, manifest list, RPM
components) and writes into the output directory exactly the content-generator metadata
the builder would import, with its placeholder archives and logs, plus summary.json.
"""

import gc
import argparse
import os
import re
import sys

# Start-up time is part of every local build (benchmarks/native_overhead prints the
# time to the first buildah call): the library modules are imported in the functions
# that use them, those a build needs later (registry HTTP, metadata, SBOM) only once
# they are used, and koji not at all (local/faults.py).
from koji_containerbuild.local import faults

PROG = 'koji-containerbuild'
TARGET_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z')
# Arches koji.canonArch() returns unchanged: they need no `import koji` (tests pin this).
CANONICAL_ARCHES = ('x86_64', 'aarch64', 'ppc64le', 's390x', 'i386', 'armhfp', 'noarch')


class _ImportsWithoutGC(object):
    """`with _IMPORTS:` around a block of imports. They allocate many objects and free
    none, so the cyclic GC's collections during them find nothing to free."""

    def __enter__(self):
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc_info):
        if self.enabled:
            gc.enable()


_IMPORTS = _ImportsWithoutGC()


class LocalOptions(object):
    """kojid-like options for source.fetch_full_tree: any git repository is allowed locally."""
    allowed_scms = '*:*'
    allowed_scms_use_config = True
    allowed_scms_use_policy = False
    allow_password_in_scm_url = False


def parser():
    from koji_containerbuild import buildah
    top = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0])
    sub = top.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    build = sub.add_parser('build', help='build an image from a directory or git_url#ref',
                           description='Build a container image with the Koji native '
                                       'pipeline and write its Koji metadata.')
    build.add_argument('source', metavar='SOURCE',
                       help='directory with a Dockerfile, or git_url#ref (git://, git+https://'
                            ', ...; optional ?subdir before #)')
    build.add_argument('--arch', action='append', dest='arches', metavar='ARCH',
                       help='Koji arch to build (repeatable; default: this host\'s arch)')
    build.add_argument('--registry', metavar='URL',
                       help='registry to push to: https://host[:port], or http://127.0.0.1:PORT '
                            'for a local plain-HTTP registry')
    build.add_argument('--tls-verify', dest='tls_verify', action='store_true', default=True,
                       help='verify the registry TLS certificate (default)')
    build.add_argument('--no-tls-verify', dest='tls_verify', action='store_false',
                       help='do not verify the registry certificate (loopback registries '
                            'only, unless --allow-insecure-registry)')
    build.add_argument('--allow-insecure-registry', action='store_true',
                       help='allow http:// or --no-tls-verify for a registry that is not on '
                            'loopback (127.0.0.0/8, ::1, localhost); credentials and images '
                            'then travel unprotected')
    build.add_argument('--authfile', metavar='FILE',
                       help='docker-style auth file with the registry credentials')
    build.add_argument('--release', metavar='R', help='release, overriding the release label')
    build.add_argument('--scratch', action='store_true',
                       help='push under the unique tag only (no version-release/latest tags)')
    build.add_argument('--output-dir', metavar='DIR',
                       help='where metadata.json, logs and summary.json go '
                            '(default: ./koji-containerbuild-output/<NVR>); created fresh, '
                            'an earlier output there is replaced')
    build.add_argument('--repo-url', action='append', dest='repo_urls', metavar='URL',
                       default=[], help='URL of a .repo file to use in RUN steps (repeatable)')
    build.add_argument('--git-branch', metavar='B',
                       help='branch the commit is on (recorded like Koji\'s git_branch)')
    build.add_argument('--allow-dirty', action='store_true',
                       help='build a directory whose git work tree has uncommitted changes '
                            '(recorded as a plain directory, without a commit)'),
    build.add_argument('--target', default='local', metavar='NAME',
                       help='name used in the unique tag (Koji uses the build target)')
    build.add_argument('--storage-root', metavar='DIR',
                       help='buildah storage root to use and keep (default: a temporary '
                            'one, removed afterwards)')
    build.add_argument('--storage-driver', default='overlay', choices=buildah.DRIVERS,
                       help='buildah storage driver (default: overlay)')
    build.add_argument('--isolation', default='chroot', choices=buildah.ISOLATIONS,
                       help='buildah isolation for RUN steps (default: chroot)')
    build.add_argument('--network', default='host',
                       help='network for RUN steps (host with chroot isolation)')
    build.add_argument('--runtime', metavar='RUNTIME',
                       help='OCI runtime for --isolation oci (runc, crun or a path; '
                            'default: buildah\'s)')
    build.add_argument('--hermetic', action='store_true',
                       help='RUN steps get no network and only the yum repository of '
                            '--repo-dir (needs --isolation oci or rootless)')
    build.add_argument('--repo-dir', metavar='DIR',
                       help='a local yum repository (createrepo\'d) for --hermetic, '
                            'bind-mounted read-only into RUN steps')
    build.add_argument('-q', '--quiet', action='store_true', help='do not echo build output')
    return top


def main(argv=None):
    """Run the command; argv None means sys.argv, i.e. the process is this program."""
    if argv is None:
        # no Koji hub in this process: its faults need not be koji's (local/faults.py)
        faults.use()
    args = parser().parse_args(argv)
    from koji_containerbuild import buildah
    try:
        return run_build(args)
    except _fault_types() as exc:
        sys.stderr.write('%s: error: %s\n' % (PROG, buildah.scrub(str(exc))))
        return 1
    except (OSError, ValueError) as exc:
        # a file, disk or data problem outside the Koji faults: one line, no traceback
        sys.stderr.write('%s: error: %s: %s\n' % (PROG, type(exc).__name__,
                                                   buildah.scrub(str(exc))))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write('%s: interrupted\n' % PROG)
        return 130
    finally:
        if argv is None:
            # The process exits next: objects moved to the permanent generation are
            # not traversed again by the collections of interpreter shutdown.
            gc.freeze()


def _fault_types():
    """The Koji fault classes of this process: the local copies errors.py derives from
    (faults.use()), and koji's own once koji is imported (errors.py's faults then, or a
    git source's koji.daemon)."""
    koji = sys.modules.get('koji')
    return (faults.GenericError,) + ((koji.GenericError,) if koji is not None else ())


def _canon_arch(arch):
    if arch in CANONICAL_ARCHES:
        return arch
    import koji   # an arch name to canonicalize (i686, armv7hl, ...): koji's rule
    return koji.canonArch(arch)


def _check_args(args):
    from koji_containerbuild import buildah
    from koji_containerbuild.errors import ConfigError, OptionError
    from koji_containerbuild.options import RELEASE_PATTERN, URL_PATTERN
    if args.release is not None:
        if not re.match(RELEASE_PATTERN, args.release):
            raise OptionError('Invalid --release %r: it must start with a digit and be '
                              'alphanumeric groups joined by "." or "_"' % args.release)
    for url in args.repo_urls:
        if not re.match(URL_PATTERN, url):
            raise OptionError('Invalid --repo-url %r: an http(s) or ftp URL is required' % url)
    if not TARGET_RE.match(args.target or ''):
        raise OptionError('Invalid --target %r: use letters, digits, "_", "." and "-" '
                          '(up to 64, starting with a letter or digit); it becomes part '
                          'of the unique tag' % (args.target,))
    if args.authfile and not os.path.isfile(args.authfile):
        raise ConfigError('--authfile %s does not exist' % args.authfile)
    if args.runtime is not None:
        from koji_containerbuild.backends.native_config import RUNTIME_RE
        if args.isolation != 'oci' or not RUNTIME_RE.match(args.runtime):
            raise OptionError('--runtime %r: give a program name (runc, crun) or an absolute '
                              'path, with --isolation oci' % (args.runtime,))
    if args.hermetic:
        if not args.repo_dir:
            raise OptionError('--hermetic needs --repo-dir DIR (a local yum repository)')
        if args.isolation == 'chroot':
            raise OptionError('--hermetic needs --isolation oci or rootless (chroot RUN '
                              'steps share the host network)')
        if args.repo_urls:
            raise OptionError('--repo-url is refused with --hermetic: RUN steps see only '
                              'the --repo-dir repository and no network')
        from koji_containerbuild import hermetic
        args.repo_dir = hermetic.check_repo_dir(os.path.abspath(args.repo_dir))
        args.network = 'none'
    elif args.repo_dir:
        raise OptionError('--repo-dir is used with --hermetic only')
    if (args.authfile or not args.tls_verify) and not args.registry:
        raise OptionError('--authfile and --no-tls-verify need --registry')
    arches = []
    for arch in args.arches or [os.uname().machine]:
        canon = _canon_arch(arch)
        buildah.goarch(canon)
        if canon not in arches:
            arches.append(canon)
    return arches


def _registry(args):
    """The registry client, after the preflight: the scheme says what is used (http:// is
    plain HTTP for buildah too), non-loopback hosts need https with verified TLS unless
    --allow-insecure-registry, and the registry must answer with these settings."""
    if not args.registry:
        return None
    with _IMPORTS:
        from koji_containerbuild.registry import Registry   # requests: only with a registry
    registry = Registry(args.registry, tls_verify=args.tls_verify,
                        credentials_file=args.authfile,
                        allow_insecure=args.allow_insecure_registry,
                        insecure_option='--allow-insecure-registry')
    registry.check_access()
    return registry


def _get_source(args, workdir):
    """(srcdir, source string for the metadata, vcs_url, commit)."""
    from koji_containerbuild import source
    from koji_containerbuild.errors import SourceError
    spec = args.source
    if os.path.isdir(spec):
        srcdir = os.path.abspath(spec)
        if not os.path.isfile(os.path.join(srcdir, source.DOCKERFILE)):
            raise SourceError('No Dockerfile in %s' % srcdir)
        top, commit = _git_facts(srcdir)
        if top and _dirty(srcdir):
            if not args.allow_dirty:
                raise SourceError(
                    '%s has uncommitted changes (git status): commit them, or pass '
                    '--allow-dirty to build it as a plain directory (no commit recorded)'
                    % srcdir)
            # what is built is not HEAD: record no commit rather than a wrong one
            return srcdir, 'file://%s#dirty' % srcdir, None, None
        if top:
            rel = os.path.relpath(srcdir, top)
            url = 'git+file://%s' % top
            src = '%s%s#%s' % (url, '' if rel == '.' else '?' + rel, commit)
            return srcdir, src, url, commit
        return srcdir, 'file://%s#local' % srcdir, None, None
    if '#' not in spec:
        raise SourceError('SOURCE %r is neither a directory nor a git_url#ref' % spec)
    checkout = source.fetch_full_tree(spec, workdir, LocalOptions())
    return checkout.srcdir, checkout.source, checkout.source.rsplit('#', 1)[0], \
        checkout.commit


def _dirty(path):
    """Does the build context `path` differ from HEAD (changed or untracked files)?"""
    import subprocess
    try:
        out = subprocess.run(['git', '-C', path, 'status', '--porcelain',
                              '--untracked-files=normal', '--', '.'],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    except (OSError, subprocess.CalledProcessError):
        return True
    return bool(out.stdout.strip())


def _git_facts(path):
    """(work tree top, HEAD sha) when `path` is inside a git work tree, else (None, None)."""
    import subprocess
    try:
        out = subprocess.run(['git', '-C', path, 'rev-parse', '--show-toplevel', 'HEAD'],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None, None
    lines = out.stdout.decode().split()
    return (lines[0], lines[1]) if len(lines) == 2 else (None, None)


class _Logs(object):
    """Per-arch log files in <output>/logs, echoed to the terminal unless quiet."""

    def __init__(self, directory, quiet):
        self.directory = directory
        self.quiet = quiet
        self.files = {}
        os.makedirs(directory, exist_ok=True)

    def writer(self, name):
        handle = self.files.get(name)
        if handle is None:
            handle = open(os.path.join(self.directory, name), 'w')
            self.files[name] = handle

        def write(line):
            handle.write(line + '\n')
            handle.flush()
            if not self.quiet:
                sys.stdout.write(line + '\n')
                sys.stdout.flush()
        return write

    def close(self):
        for handle in self.files.values():
            handle.close()

    def paths(self):
        return [(os.path.join(self.directory, n), n) for n in sorted(self.files)]


def run_build(args):
    # what the build needs before its first buildah call; the rest is imported where used
    with _IMPORTS:
        import shutil
        import tempfile
        import threading
        import time

        from koji_containerbuild import buildah, cg, native_build, safe_files, source
        from koji_containerbuild.errors import SourceError
        from koji_containerbuild.registry_parse import check_repository
    arches = _check_args(args)
    registry = _registry(args)
    start = time.time()
    workdir = tempfile.mkdtemp(prefix='kcb-local-')
    storage = None
    cleanup = None
    logs = None
    try:
        srcdir, src, vcs_url, commit = _get_source(args, workdir)
        dockerfile_path = os.path.join(srcdir, source.DOCKERFILE)
        labels = source.read_labels(dockerfile_path)
        identity = source.image_identity(labels, release_override=args.release)
        if not identity.release:
            raise SourceError('No release: set a "release" label in the Dockerfile or pass '
                              '--release (the local command has no Koji to pick one)')
        extra_tags, dropped = source.split_valid_tags(source.read_additional_tags(srcdir))
        source.check_tag_lengths(identity.version, identity.release, extra_tags)
        check_repository(identity.name)
        # A fresh directory of ours: the default lies under the current directory,
        # which may be the checkout being built (symlinks committed there are refused).
        output = safe_files.make_output_dir(args.output_dir or os.path.join(
            'koji-containerbuild-output', identity.nvr))
        logs = _Logs(os.path.join(output, 'logs'), args.quiet)
        if args.storage_root:
            storage = buildah.Storage(args.storage_root, None, args.storage_driver)
        else:
            storage = buildah.Storage.temporary(workdir, args.storage_driver)
        settings = {'storage': storage, 'isolation': args.isolation, 'network': args.network,
                    'runtime': args.runtime,
                    'pull': 'missing', 'image_dir': os.path.join(output, 'images'),
                    'hermetic_repo': args.repo_dir if args.hermetic else None}
        if args.hermetic:
            from koji_containerbuild import hermetic
            repo_files = [hermetic.repo_file(os.path.join(workdir, 'hermetic.repo'),
                                             'local-repo', 'Local repo (hermetic)')]
        else:
            repo_files = _fetch_repo_files(args.repo_urls, workdir)
        unique = cg.unique_tag(args.target)
        tags = cg.tag_plan(identity, scratch=args.scratch, additional_tags=extra_tags,
                           unique=unique)
        if registry is not None:
            # before the first push: may this component move these tags? (tag_guard)
            from koji_containerbuild import tag_guard
            tag_guard.check_tags(registry, identity.name, tags, identity.component,
                                 arch_tags=['%s-%s' % (unique, a) for a in arches])
        results = []
        for arch in arches:
            log = logs.writer('%s.log' % arch)
            log('== %s: building %s for %s' % (PROG, identity.nvr, arch))
            labels_extra = native_build.koji_labels(identity, arch, vcs_url=vcs_url,
                                                    vcs_ref=commit)
            results.append(native_build.build_arch(
                srcdir, source.DOCKERFILE, arch, identity, labels_extra, repo_files, registry,
                identity.name, unique, os.path.join(workdir, arch), log, settings))
        if storage.owned:
            # The images are pushed and described: drop the private storage while the
            # tags are published and the metadata written.
            cleanup = threading.Thread(target=storage.destroy, name='storage-cleanup')
            cleanup.start()
        index = None
        if registry is not None:
            index = cg.publish_manifest_list(registry, identity.name, results, tags,
                                             log_line=logs.writer('%s.log' % arches[0]),
                                             scratch=args.scratch,
                                             component=identity.component)
        logs.close()
        with _IMPORTS:
            import getpass
            import json

            from koji_containerbuild import supply_chain
        parent = results[0]
        metadata = cg.build_metadata(
            identity, src, getpass.getuser(), None, start, time.time(), results, index=index,
            logs=logs.paths(), yum_repourls=args.repo_urls or None,
            parent_image_builds=dict((k, None) for k in parent['parent_pullspecs'].values()),
            hermetic=args.hermetic)
        # SBOM + provenance: next to metadata.json, and outputs of the import like in Koji
        docs = supply_chain.local_documents(
            results, identity, src, commit, args.target,
            {'release': args.release, 'scratch': args.scratch, 'yum_repourls': args.repo_urls,
             'hermetic': args.hermetic},
            args.repo_urls, [] if args.hermetic else repo_files,
            repo_dir=args.repo_dir if args.hermetic else None)
        supply_chain.add_to_metadata(metadata, docs)
        cg.write_import_dir(os.path.join(output, 'import'), metadata, results, logs.paths())
        supply_chain.write(os.path.join(output, 'import'), docs)
        summary = _summary(identity, src, results, index, tags, output, dropped, args)
        summary['supply_chain'] = supply_chain.write(output, docs)
        if registry is not None:
            supply_chain.attach(registry, identity.name, docs)
        with open(os.path.join(output, 'metadata.json'), 'w') as f:
            f.write(cg.dumps(metadata))
        with open(os.path.join(output, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=2, sort_keys=True)
            f.write('\n')
        _print_summary(summary)
        return 0
    finally:
        if logs is not None:
            logs.close()
        # A storage root given by the user is kept (its images are the cache); the
        # pipeline removed its own containers already.
        if cleanup is not None:
            cleanup.join()
        elif storage is not None and storage.owned:
            storage.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def _fetch_repo_files(urls, workdir):
    """Download the --repo-url .repo files into workdir, with the builder's rules (size
    and time bound, parsed as a yum repo config, credentials redacted in errors). The
    URLs are the user's own: any address may be used, loopback included."""
    if not urls:
        return []
    import ipaddress
    from koji_containerbuild import repofetch
    anywhere = (ipaddress.ip_network('0.0.0.0/0'), ipaddress.ip_network('::/0'))
    return [repofetch.fetch_repo_file(url, os.path.join(workdir, 'repo-%d.repo' % number), 60,
                                      anywhere)
            for number, url in enumerate(urls)]


def _summary(identity, src, results, index, tags, output, dropped, args):
    return {
        'nvr': identity.nvr,
        'name': identity.name,
        'source': src,
        'git_branch': args.git_branch,
        'scratch': bool(args.scratch),
        'output_dir': output,
        'metadata': os.path.join(output, 'metadata.json'),
        'import_dir': os.path.join(output, 'import'),
        'pull_specs': (index or {}).get('pull', []),
        'tags': tags if index else {},
        'manifest_list_digest': list((index or {}).get('digests', {}).values())[:1] or None,
        'dropped_tags': dropped,
        'arches': [{
            'arch': r['arch'], 'image_id': r['image_id'],
            'manifest_digest': r['manifest_digest'], 'repositories': r['repositories'],
            'image_dir': r['image_dir'], 'rpm_count': len(r['components']),
            'parent_id': r['parent_id'], 'log': os.path.join(output, 'logs', r['log_file']),
        } for r in results],
    }


def _print_summary(summary):
    out = sys.stdout
    out.write('\nBuilt %s (%s)\n' % (summary['nvr'], summary['source']))
    for arch in summary['arches']:
        out.write('  %-8s image %s\n' % (arch['arch'], arch['image_id']))
        out.write('  %-8s manifest %s, %d RPMs\n' % ('', arch['manifest_digest'],
                                                     arch['rpm_count']))
        if arch['image_dir']:
            out.write('  %-8s saved in %s (no --registry given)\n' % ('', arch['image_dir']))
    for spec in summary['pull_specs']:
        out.write('  pull: %s\n' % spec)
    out.write('  metadata: %s\n' % summary['metadata'])
    out.write('  summary:  %s\n' % os.path.join(summary['output_dir'], 'summary.json'))
    for path in summary.get('supply_chain') or []:
        out.write('  %s %s\n' % ('sbom:      ' if path.endswith('.spdx.json')
                                 else 'provenance:', path))
    if summary['dropped_tags']:
        out.write('  dropped invalid additional tags: %s\n' % ', '.join(summary['dropped_tags']))


if __name__ == '__main__':
    sys.exit(main())
