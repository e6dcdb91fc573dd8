"""Native backend, Koji side: the per-arch `createContainer` subtask.

run_arch(handler, config, src, target, arch, params): full checkout, buildah build +
push by the unique arch tag (native_build.build_arch), log streamed live as
`<arch>.log`, per-arch metadata uploaded, ArchResult returned.
"""

import json
import os
import re
import threading

import koji

from koji_containerbuild import (buildah, checkout_log, dockerfile as dockerfile_mod,
                                 hermetic, native_build, ownership, repofetch, safe_files,
                                 scmurl, source, supply_chain)
from koji_containerbuild.backends import native_config
from koji_containerbuild.backends.native_common import short
from koji_containerbuild.errors import BackendError, OptionError
from koji_containerbuild.logs import LogRelay

MAX_REPO_FILE = repofetch.MAX_REPO_FILE   # bytes of one yum_repourls .repo file
PARAM_KEYS = ('registry', 'repository', 'unique_tag', 'identity', 'build_tag', 'repo_id',
              'yum_repourls', 'base_image', 'dockerfile', 'labels', 'scratch', 'owner')


def _check_params(arch, params):
    if not isinstance(params, dict):
        raise OptionError('createContainer: params must be a dict')
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise OptionError('createContainer: missing params %s' % ', '.join(missing))
    if not re.match(r'^[A-Za-z0-9_]+\Z', str(arch)):
        raise OptionError('createContainer: invalid arch %r' % (arch,))
    if not isinstance(params.get('hermetic', False), bool):
        raise OptionError('createContainer: hermetic must be true or false')
    if params.get('hermetic'):
        hermetic.refuse_network_sources(params)
    rel = params['dockerfile']
    if not isinstance(rel, str) or os.path.isabs(rel) or '..' in rel.split('/'):
        raise OptionError('createContainer: invalid Dockerfile path %r' % (rel,))
    return params


def koji_repo_baseurl(topurl, build_tag, repo_id, arch):
    return '%s/repos/%s/%s/%s/' % (topurl.rstrip('/'), build_tag, repo_id, arch)


def koji_repo_file(path, topurl, build_tag, repo_id, arch):
    """Write the .repo file for the build tag's Koji repo of `arch`; return its path."""
    baseurl = koji_repo_baseurl(topurl, build_tag, repo_id, arch)
    name = re.sub(r'[^\w.-]', '_', 'koji-%s-%s' % (build_tag, repo_id))
    return safe_files.write_new(
        path, '[%s]\nname=Koji repo %s (%s) %s\nbaseurl=%s\nenabled=1\ngpgcheck=0\n'
        'skip_if_unavailable=False\n' % (name, build_tag, repo_id, arch, baseurl))


def fetch_repo_file(url, path, timeout, allowed=()):
    """Download one yum_repourls .repo file to `path`: public addresses only (plus the
    `allowed` networks), checked after resolution and after every redirect, bounded in
    size and time, and parsed as a yum repo config (repofetch)."""
    return repofetch.fetch_repo_file(url, path, timeout, allowed)


def rewrite_base(text, base_image):
    """Dockerfile text (bytes, or str) with the final stage's base replaced by
    `base_image` (koji_parent_build): only that FROM instruction's characters change;
    FROM scratch cannot be replaced."""
    froms = native_build.from_instructions(text)
    final = froms[-1]
    aliases = set(f['alias'] for f in froms[:-1] if f['alias'])
    if final['image'] == 'scratch' or final['image'].lower() in aliases:
        raise OptionError('koji_parent_build cannot replace FROM %s' % final['image'])
    return native_build.replace_froms(text, [(final, native_build.from_text(final,
                                                                            base_image))])


class ArchBuild(object):
    """One createContainer run."""

    def __init__(self, handler, config, native, src, target, arch, params):
        self.handler = handler
        self.session = handler.session
        self.logger = handler.logger
        self.config = config
        self.native = native
        self.src = src
        self.target = target
        self.arch = arch
        self.params = _check_params(arch, params)

    def run(self):
        params = self.params
        if params['registry'] != self.native.registry:
            raise BackendError('This builder pushes to %s but the build uses %s: the '
                               '[native] registry must be the same on every builder'
                               % (self.native.registry, params['registry']))
        # this builder's registry settings and credentials work, before any checkout
        self.native.check_runtime()
        self.native.check_registry()
        if params.get('hermetic'):
            # the Koji volume's repo is here, before any checkout (never the network)
            hermetic.check_repo_dir(self._hermetic_repo())
        workdir = self.handler.workdir
        log_name = '%s.log' % self.arch
        relay = LogRelay(self.session, self.handler.getUploadDir(), workdir,
                         flush_interval=getattr(self.config, 'log_flush_interval', 0.5),
                         retry_timeout=getattr(self.config, 'retry_timeout', 300.0),
                         logger=self.logger)
        canceled = False
        storage_parent = self.native.task_storage_parent(self.handler.id, workdir)
        prepared = None
        try:
            storage = self.native.task_storage(self.handler.id, workdir)
            # the fresh storage's set-up and buildah's version, while the checkout runs
            prepared = threading.Thread(target=_prepare, args=(storage,), daemon=True)
            prepared.start()
            result = self._build(relay, log_name, workdir, storage, prepared)
        except (KeyboardInterrupt, SystemExit):
            canceled = True
            raise
        except koji.GenericError as exc:
            relay.write(log_name, 'ERROR: %s' % exc)
            raise
        except Exception as exc:
            # not a Koji fault: kojid would show a traceback; keep it in kojid's own log
            # and give the task (and the parent) one clear line
            self.logger.exception('createContainer for %s failed', self.arch)
            error = BackendError('createContainer for %s failed: %s: %s' % (
                self.arch, type(exc).__name__, short(scmurl.redact(str(exc)))))
            relay.write(log_name, 'ERROR: %s' % error)
            raise error from None
        finally:
            if prepared is not None:
                prepared.join()
            # The task's storage (its containers, its image, pulled parents) goes with it,
            # also on cancellation.
            native_config.destroy_task_storage(storage_parent)
            if canceled:
                # uploads are refused once the task is canceled: do not wait on retries
                _abandon(relay)
            else:
                relay.close(raise_error=False)
                if relay.error is not None:
                    self.logger.warning('%s upload incomplete: %s', log_name, relay.error)
        meta_path = os.path.join(workdir, 'metadata-%s.json' % self.arch)
        with open(meta_path, 'w') as f:
            json.dump(result, f, indent=2, sort_keys=True)
        self.handler.uploadFile(meta_path)
        return result

    def _build(self, relay, log_name, workdir, storage, prepared):
        params = self.params

        def log_line(line):
            relay.write(log_name, line)

        # checkout.log in the task output, as for kojid's own checkouts
        checkout = checkout_log.logged(
            self.handler, source.fetch_full_tree,
            self.src, os.path.join(workdir, 'source'), self.handler.options,
            session=self.session, logger=self.logger,
            policy_data={'user_id': self._owner_id(), 'channel': self._channel(),
                         'scratch': params['scratch']})
        srcdir = checkout.srcdir
        dockerfile = params['dockerfile']
        if not os.path.lexists(os.path.join(srcdir, dockerfile)):
            raise BackendError('%s not found in %s' % (dockerfile, scmurl.redact(self.src)))
        # read as a regular file inside the checkout (no symlinks), bounded
        data = safe_files.read_in_tree(srcdir, dockerfile, dockerfile_mod.MAX_DOCKERFILE,
                                       dockerfile)
        if params['base_image']:
            # The rewritten file goes to the task's own directory, never into the
            # checkout: a repository could commit a symlink of any name there.
            # (buildah build --file may point outside the build context.)
            dockerfile = safe_files.write_new(
                os.path.join(workdir, 'Dockerfile.koji-parent'),
                rewrite_base(data, params['base_image']))
            log_line('koji_parent_build: final stage FROM %s' % params['base_image'])
        repos_dir = os.path.join(workdir, 'repos')
        os.makedirs(repos_dir, exist_ok=True)
        settings = self.native.build_settings(storage)
        settings['image_cache'] = self.native.image_cache(self.handler.id, workdir)
        if params.get('hermetic'):
            settings['hermetic_repo'] = self._hermetic_repo()
            repo_files = [hermetic.repo_file(
                os.path.join(repos_dir, 'koji.repo'),
                'koji-%s-%s' % (params['build_tag'], params['repo_id']),
                'Koji repo %s (%s) %s, hermetic' % (params['build_tag'], params['repo_id'],
                                                    self.arch))]
        else:
            repo_files = [koji_repo_file(os.path.join(repos_dir, 'koji.repo'),
                                         self.handler.options.topurl, params['build_tag'],
                                         params['repo_id'], self.arch)]
        for index, url in enumerate(params['yum_repourls']):
            repo_files.append(fetch_repo_file(
                url, os.path.join(repos_dir, 'extra-%d.repo' % index),
                self.native.yum_repourl_timeout, self.native.yum_repourl_networks))
        registry = self.native.registry_client()
        ident = params['identity']
        labels = native_build.koji_labels(ident, self.arch, vcs_url=params['labels'].get('vcs-url'),
                                          vcs_ref=params['labels'].get('vcs-ref'))
        settings['fence'] = ownership.of_handler(self.handler).check   # before the push
        prepared.join()
        log_line('Building %s for %s in task %s' % (ident['nvr'], self.arch, self.handler.id))
        result = native_build.build_arch(
            srcdir, dockerfile, self.arch, ident, labels, repo_files, registry,
            params['repository'], params['unique_tag'], os.path.join(workdir, 'build'),
            log_line, settings)
        # what the provenance lists as resolved: the Koji repo, each .repo file's digest
        koji_repo = {'url': koji_repo_baseurl(self.handler.options.topurl, params['build_tag'],
                                              params['repo_id'], self.arch),
                     'repo_id': params['repo_id'], 'build_tag': params['build_tag']}
        if params.get('hermetic'):
            koji_repo['mounted_from'] = self._hermetic_repo()
        result['supply_chain'] = supply_chain.arch_inputs(
            koji_repo,
            [scmurl.redact(u) for u in params['yum_repourls']], repo_files[1:])
        return result

    def _hermetic_repo(self):
        params = self.params
        return hermetic.koji_repo_dir(getattr(self.handler.options, 'topdir', None),
                                      params['build_tag'], params['repo_id'], self.arch)

    def _channel(self):
        # kojid's build_from_scm policy data names the task's channel
        try:
            info = self.session.getChannel(self.handler.taskinfo['channel_id'])
        except (koji.GenericError, KeyError, TypeError):
            return None
        return info['name'] if info else None

    def _owner_id(self):
        try:
            return self.handler.taskinfo['owner']
        except (koji.GenericError, KeyError, TypeError):
            return None


def _prepare(storage):
    """Background set-up of a task's storage; whatever fails here, the build reports."""
    try:
        storage.prepare()
        buildah.version(storage.buildah)
    except Exception:
        pass


def _abandon(relay):
    """Stop a relay without waiting for retries (cancellation: ~3 s before SIGKILL)."""
    try:
        relay.retry_timeout = 0
        relay.close(raise_error=False)
    except Exception:
        pass


def run_arch(handler, config, src, target, arch, params):
    """Per-arch createContainer subtask for backend = native; returns the ArchResult."""
    native = native_config.from_builder_config(config)
    return ArchBuild(handler, config, native, src, target, arch, params).run()
