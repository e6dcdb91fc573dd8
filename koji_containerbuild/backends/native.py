"""Native backend, Koji side: the `buildContainer` parent flow and `createContainer` per arch.

run_binary(handler, plan, config)  - parent task (noarch, container channel):
    reserve the NVR (CGInitBuild) -> one createContainer subtask per arch -> wait, a
    failure cancels the siblings -> manifest list computed locally and PUT by digest
    (untagged) -> upload outputs + CGImport with the token -> manifest list under the
    unique and primary tags -> tagBuild subtask -> floating tags.
    Any failure or cancellation after the reservation refunds it (CGRefundBuild).
run_arch(handler, config, src, target, arch, params) - per-arch subtask: full checkout,
    buildah build + push by the unique arch tag (native_build.build_arch), log streamed
    live as `<arch>.log`, per-arch metadata uploaded, ArchResult returned.

Why the manifest list is PUT by digest before the import: the index digest must be in
the metadata, and the registry must accept the list (it checks that every per-arch
manifest exists) before Koji records the build; an untagged list blocks nothing, so a
failed import leaves no tag that could stop a rebuild. Tags only follow a good import.
"""

import json
import os
import re
import secrets
import signal
import time

import koji

from koji_containerbuild import cg, native_build, registry as registry_mod, scmurl, source
from koji_containerbuild.backends import native_config
from koji_containerbuild.errors import BackendError, OptionError
from koji_containerbuild.logs import LogRelay

CHILD_METHOD = 'createContainer'
TAG_METHOD = 'tagBuild'
MAX_RELEASE_TRIES = 20
MAX_RUNS = 20                 # labels probed per arch when a re-run finds old children
MAX_REPO_FILE = 1024 * 1024   # bytes of one yum_repourls .repo file
MAX_RESULT_TEXT = 300
RESERVATION_FILE = 'reservation.json'
PUBLISH_RETRY_DELAYS = (2, 5, 15, 30)   # seconds between tries to publish tags
MAX_RESERVATION_FILE = 64 * 1024
# Options only the OSBS backend can honour: refused instead of silently ignored.
OSBS_ONLY_OPTS = ('compose_ids', 'signing_intent', 'dependency_replacements',
                  'operator_csv_modifications_url')
PARAM_KEYS = ('registry', 'repository', 'unique_tag', 'identity', 'build_tag', 'repo_id',
              'yum_repourls', 'base_image', 'dockerfile', 'labels', 'scratch', 'owner')
FINISHED = (koji.TASK_STATES['CLOSED'], koji.TASK_STATES['FAILED'],
            koji.TASK_STATES['CANCELED'])


# ------------------------------------------------------------------ names and tags

def repository_for(name_label, namespace=''):
    """Registry repository for a `name` label; a namespace turns 'a/b' into '<ns>/a-b'."""
    repo = name_label
    if namespace:
        repo = '%s/%s' % (namespace, name_label.replace('/', '-'))
    try:
        return registry_mod.check_repository(repo)
    except BackendError:
        raise OptionError('The name label %r does not give a valid registry repository '
                          '(%r): use lowercase letters, digits, ".", "_", "-" and "/"'
                          % (name_label, repo))


def unique_tag(fmt, target, task_id, now=None, rand=None):
    """The build's unique tag from the configured format (per-arch: '<unique>-<arch>')."""
    safe_target = re.sub(r'[^\w.-]', '_', target).lstrip('.-') or 'target'
    tag = cg.unique_tag(safe_target, now=now, rand=rand, fmt=fmt, task_id=task_id)
    # keep room for the '-<arch>' suffix of per-arch tags within the 128 limit
    return tag[:110].rstrip('.-')


def pullable_ref(image):
    """A FROM value from another registry as a pullable reference with its tag
    (latest when none) unless pinned by digest. (FROM values without a registry host
    are resolved in the build registry and keyed by that pull spec instead.)"""
    host, repo, tag, digest = native_build.split_image(image)
    ref = '%s/%s' % (host, repo) if host else repo
    if digest:
        return '%s@%s' % (ref, digest)
    return '%s:%s' % (ref, tag or 'latest')


def bump_release(release):
    """Next release for auto-release: bump the leading number ('3' -> '4', '3.el9' -> '4.el9')."""
    match = re.match(r'^(\d+)(.*)$', release or '')
    if not match:
        raise BackendError('Cannot increment release %r' % (release,))
    return '%d%s' % (int(match.group(1)) + 1, match.group(2))


def _json_norm(value):
    return json.dumps(value, sort_keys=True, default=str)


def _is_fault(result):
    return isinstance(result, dict) and set(result) == set(('faultCode', 'faultString'))


def _short(text):
    text = str(text)
    return text if len(text) <= MAX_RESULT_TEXT else text[:MAX_RESULT_TEXT - 3] + '...'


# ------------------------------------------------------------------ subtasks

class Children(object):
    """Subtasks of one parent: label reuse on re-runs, waiting, sibling cancellation."""

    def __init__(self, handler, poll_interval):
        self.handler = handler
        self.session = handler.session
        self.poll_interval = poll_interval

    def cancel_leftovers(self):
        """A re-run (kojid restart) finds the old run's children: stop any still active."""
        if any(c['state'] not in FINISHED for c in self._children()):
            self.handler.logger.info('cancelling subtasks left by an earlier run')
            self.session.cancelTaskChildren(self.handler.id)

    def _children(self):
        return self.session.getTaskChildren(self.handler.id) or []

    def start(self, method, args, label, **opts):
        """Create a subtask; a label used by an earlier run gets a run suffix.

        host.subtask returns the existing child for a known (parent, label) whatever its
        state, so a child counts as ours only if its request is exactly `args`.
        """
        want = _json_norm(args)
        for run in range(1, MAX_RUNS + 1):
            run_label = label if run == 1 else '%s~%d' % (label, run)
            task_id = self.handler.subtask(method, args, label=run_label, **opts)
            info = self.session.getTaskInfo(task_id, request=True)
            if info and _json_norm(info.get('request')) == want:
                return task_id
            self.handler.logger.info('label %s belongs to task %s of an earlier run',
                                     run_label, task_id)
        raise BackendError('Too many earlier runs of task %s: no free subtask label for %s'
                           % (self.handler.id, label))

    def wait(self, names):
        """Wait for `names` ({task_id: name}); return {task_id: result}.

        The first failed or canceled child cancels the others and raises its error.
        Between polls the task sleeps until kojid's SIGUSR2 (a subtask ended) or the poll
        interval, so the loop also works where no one sends the signal.
        """
        ids = sorted(names)
        host = self.session.host
        host.taskSetWait(self.handler.id, ids)
        results = {}
        while True:
            finished, unfinished = host.taskWait(self.handler.id)
            new = [t for t in finished if t in names and t not in results]
            if new:
                for task_id, result in host.taskWaitResults(self.handler.id, new, canfail=new):
                    if _is_fault(result):
                        self._cancel_others(set(ids) - set(results) - set([task_id]))
                        raise BackendError('%s (task %s) failed: %s' % (
                            names[task_id], task_id, _short(result['faultString'])))
                    results[task_id] = result
            if len(results) == len(ids):
                return results
            pending = [t for t in unfinished if t in names]
            if not pending and not new:
                # Nothing awaited and nothing new: ask for the states directly.
                self._check_lost(names, results)
            self._sleep()

    def _check_lost(self, names, results):
        for task_id in names:
            if task_id in results:
                continue
            info = self.session.getTaskInfo(task_id)
            if info is None:
                raise BackendError('%s (task %s) vanished' % (names[task_id], task_id))
            if info['state'] in FINISHED:
                self.session.host.taskSetWait(self.handler.id, [task_id])

    def _cancel_others(self, others):
        if not others:
            return
        self.handler.logger.info('cancelling subtasks %s', sorted(others))
        try:
            self.session.cancelTaskChildren(self.handler.id)
        except koji.GenericError as exc:
            self.handler.logger.warning('could not cancel subtasks: %s', exc)

    def _sleep(self):
        try:
            signal.sigtimedwait([signal.SIGUSR2], self.poll_interval)
        except (AttributeError, ValueError, OSError):  # pragma: no cover - other platforms
            time.sleep(self.poll_interval)


# ------------------------------------------------------------------ parent

class Reservation(object):
    """A CGInitBuild reservation that is refunded unless imported."""

    def __init__(self, session, cg_name, logger):
        self.session = session
        self.cg_name = cg_name
        self.logger = logger
        self.build_id = None
        self.token = None
        self.imported = False
        self.refunded = False

    def reserve(self, identity):
        data = {'name': identity.component, 'version': identity.version,
                'release': identity.release}
        try:
            info = self.session.CGInitBuild(self.cg_name, data)
        except koji.AuthError as exc:
            raise BackendError('Cannot reserve %s: this builder has no access to content '
                               'generator %r (koji grant-cg-access): %s'
                               % (identity.nvr, self.cg_name, exc))
        except koji.GenericError as exc:
            raise BackendError('Cannot reserve build %s: %s' % (identity.nvr, exc))
        self.build_id = int(info['build_id'])
        self.token = info['token']
        self.logger.info('reserved build %s as id %s', identity.nvr, self.build_id)
        return self.build_id

    def refund(self, canceled):
        """Refund a still reserved build; errors are logged, never raised."""
        if self.build_id is None or self.refunded:
            return
        self.refunded = True
        state = koji.BUILD_STATES['CANCELED' if canceled else 'FAILED']
        try:
            self.session.CGRefundBuild(self.cg_name, self.build_id, self.token, state)
            self.logger.info('refunded build %s (%s)', self.build_id,
                             koji.BUILD_STATES[state])
        except Exception as exc:
            level = self.logger.info if self.imported else self.logger.warning
            level('could not refund build %s: %s', self.build_id, _short(exc))


class ParentBuild(object):
    """One run of the native buildContainer flow (see the module docstring)."""

    def __init__(self, handler, plan, config, native):
        self.handler = handler
        self.session = handler.session
        self.logger = handler.logger
        self.plan = plan
        self.config = config
        self.native = native
        self.task_id = handler.id
        self.identity = plan.identity
        self.scratch = bool(plan.scratch)
        self.isolated = bool(plan.isolated)
        self.warnings = list(getattr(plan, 'warnings', None) or [])
        self.registry = registry_mod.Registry(native.registry, **native.registry_kwargs())
        self.repository = repository_for(self.identity.name, native.registry_namespace)
        self.unique = unique_tag(native.unique_tag_format, plan.target['name'], self.task_id)
        self.children = Children(handler, native.poll_interval)
        self.reservation = Reservation(self.session, native.content_generator, self.logger)
        self.start_time = int(time.time())
        self.tags = None    # known once the release is (auto-release)

    def pullspec(self, ref):
        return self.registry.pullspec(self.repository, ref)

    # -- flow
    def run(self):
        self._refuse_unsupported()
        try:
            return self._run()
        except (KeyboardInterrupt, SystemExit):
            # kojid cancels by signals; about 3 s until SIGKILL: refund first.
            self.reservation.refund(canceled=True)
            raise
        except koji.GenericError:
            self.reservation.refund(canceled=False)
            raise
        except Exception as exc:
            self.reservation.refund(canceled=False)
            self.logger.exception('native build failed')
            raise BackendError('Native build failed: %s: %s' % (type(exc).__name__,
                                                                _short(exc)))

    def _refuse_unsupported(self):
        opts = self.plan.opts or {}
        for name in OSBS_ONLY_OPTS:
            if opts.get(name):
                raise OptionError("Option %r is not supported by the native backend "
                                  "(it needs backend = osbs)" % name)
        if getattr(self.plan, 'flatpak', False) or opts.get('flatpak'):
            raise OptionError('Flatpak builds are not supported by the native backend '
                              '(they need backend = osbs)')

    def _run(self):
        self._reserve()
        self.tags = cg.tag_plan(self.identity, scratch=self.scratch, isolated=self.isolated,
                                additional_tags=getattr(self.plan, 'additional_tags', None)
                                or (), unique=self.unique)
        base_image, parent_build = self._koji_parent_build()
        repo_id = self._repo_id()
        self.children.cancel_leftovers()
        names = {}
        for arch in self.plan.arches:
            args = [self._subtask_source(), self.plan.target['name'], arch,
                    self._params(arch, repo_id, base_image)]
            child = self.children.start(CHILD_METHOD, args, label=arch, arch=arch,
                                        channel=self.native.channel)
            names[child] = 'createContainer for %s' % arch
            self.logger.info('createContainer for %s: task %s', arch, child)
        results = self.children.wait(names)
        arch_results = sorted(results.values(), key=lambda r: r['arch'])
        child_of = dict((r['arch'], t) for t, r in results.items())
        list_digest = self._push_list_by_digest(arch_results)
        index = cg.index_info(self.registry.host, self.repository, list_digest, self.tags,
                              scratch=self.scratch)
        if self.scratch:
            self._publish(arch_results, ('unique',))
            return self._result()
        parent_info = self._parent_images(arch_results, parent_build)
        build_id = self._import(arch_results, child_of, index, parent_info)
        # Only now may the NVR tag exist; floating tags wait for the Koji tag to succeed.
        self._publish_imported(arch_results, ('unique', 'primary'), build_id)
        self._tag_build(build_id)
        self._publish_imported(arch_results, ('floating',), build_id)
        return self._result(build_id)

    def _reserve(self):
        """Reserve the NVR; with auto-release, take the next free release (as OSBS does)."""
        auto = not self.identity.release
        if auto:
            self.identity.release = self.session.getNextRelease(
                {'name': self.identity.component, 'version': self.identity.version})
            self.logger.info('auto-release: %s', self.identity.nvr)
        if self.scratch:
            return
        for _attempt in range(MAX_RELEASE_TRIES):
            if auto and not self._nvr_free():
                self.identity.release = bump_release(self.identity.release)
                continue
            try:
                self.reservation.reserve(self.identity)
                self._record_reservation()
                return
            except BackendError:
                if not auto:
                    raise
                self.identity.release = bump_release(self.identity.release)
        raise BackendError('No free release found for %s-%s after %d tries'
                           % (self.identity.component, self.identity.version,
                              MAX_RELEASE_TRIES))

    def _record_reservation(self):
        """Keep the reservation on the hub for a re-run of this task (earlier_reservation)."""
        res = self.reservation
        record = {'build_id': res.build_id, 'token': res.token, 'nvr': self.identity.nvr,
                  'cg': self.native.content_generator}
        os.makedirs(self.handler.workdir, exist_ok=True)
        path = os.path.join(self.handler.workdir, RESERVATION_FILE)
        with open(path, 'w') as f:
            json.dump(record, f)
        self.handler.uploadFile(path)

    def _nvr_free(self):
        build = self.session.getBuild(self.identity.nvr)
        return not build or build['state'] in (koji.BUILD_STATES['FAILED'],
                                               koji.BUILD_STATES['CANCELED'])

    def _params(self, arch, repo_id, base_image):
        ident = self.identity
        return {
            'registry': self.native.registry,
            'repository': self.repository,
            'unique_tag': self.unique,
            'identity': {'component': ident.component, 'name': ident.name,
                         'version': ident.version, 'release': ident.release,
                         'nvr': ident.nvr},
            'build_tag': self.plan.target['build_tag_name'],
            'repo_id': repo_id,
            'yum_repourls': list((self.plan.opts or {}).get('yum_repourls') or []),
            'base_image': base_image,
            'dockerfile': self._dockerfile_relpath(),
            'labels': {'vcs-url': self.plan.checkout.source.rsplit('#', 1)[0],
                       'vcs-ref': self.plan.checkout.commit},
            'scratch': self.scratch,
            'owner': self.plan.owner,
        }

    def _subtask_source(self):
        """The URL the subtasks fetch: the URL as given, pinned to the commit.

        Not the redacted `checkout.source`: with allow_password_in_scm_url the subtasks
        need the credentials too. Never logged; task arguments are visible on the hub,
        where the parent's own request already carries them in that configuration.
        """
        checkout = self.plan.checkout
        return '%s#%s' % (checkout.url.split('#', 1)[0], checkout.commit)

    def _dockerfile_relpath(self):
        checkout = self.plan.checkout
        rel = os.path.relpath(checkout.dockerfile_path, checkout.srcdir)
        if rel.startswith('..') or os.path.isabs(rel):
            raise BackendError('Dockerfile %s is outside the checkout' % rel)
        return rel

    def _repo_id(self):
        build_tag = self.plan.target['build_tag_name']
        repo = self.session.getRepo(build_tag)
        if not repo:
            raise BackendError('Build tag %s has no ready Koji repository: regenerate it '
                               '(koji regen-repo %s)' % (build_tag, build_tag))
        return int(repo['id'])

    # -- parent images
    def _koji_parent_build(self):
        """(by-digest pull spec, build info) for opts koji_parent_build, else (None, None)."""
        nvr = (self.plan.opts or {}).get('koji_parent_build')
        if not nvr:
            return None, None
        build = self.session.getBuild(nvr)
        if not build or build['state'] != koji.BUILD_STATES['COMPLETE']:
            raise BackendError('koji_parent_build %s is not a complete Koji build' % nvr)
        index = ((build.get('extra') or {}).get('image') or {}).get('index') or {}
        pulls = index.get('pull') or []
        by_digest = [p for p in pulls if '@sha256:' in p]
        if not (by_digest or pulls):
            raise BackendError('koji_parent_build %s is not a container image build '
                               '(no extra.image.index.pull)' % nvr)
        return (by_digest or pulls)[0], build

    def _parent_images(self, arch_results, parent_build):
        """parent_build_id / parent_image_builds / parent_images for build.extra.image.

        Method: every FROM image the per-arch builds resolved in the build registry is
        looked up by the NVR in its own labels (component/version/release), and counts
        as that Koji build only if the build's index digest or one of its per-arch
        manifest digests is the digest the build pulled.
        """
        first = arch_results[0]
        parents = list(first.get('parent_images') or [])
        resolved = first.get('parent_pullspecs') or {}
        builds = {}
        final = parents[-1] if parents else None
        # One entry per stage, keyed by the full pullable reference; null when no Koji
        # build is known (e.g. a parent from another registry).
        for image in parents:
            if image == 'scratch':
                continue
            pullspec = resolved.get(image) or pullable_ref(image)
            if parent_build is not None and image == final:
                builds[pullspec] = {'id': parent_build['id'], 'nvr': parent_build['nvr']}
            elif image in resolved:
                builds[pullspec] = self._koji_build_of(image, arch_results)
            else:
                builds[pullspec] = None
        if parent_build is None and final and final != 'scratch':
            parent_build = builds.get(resolved.get(final) or pullable_ref(final))
        return parent_build, builds

    def _koji_build_of(self, image, arch_results):
        pinned = dict((r['arch'], (r.get('parent_pinned') or {}).get(image))
                      for r in arch_results)
        spec = next((p for p in pinned.values() if p), None)
        if not spec:
            return None
        repo = spec.split('/', 1)[1].split('@', 1)[0]
        digest = spec.split('@', 1)[1]
        try:
            manifest = json.loads(self.registry.get_manifest(repo, digest)[1])
            config = json.loads(self.registry.get_blob(repo, manifest['config']['digest']))
            labels = (config.get('config') or {}).get('Labels') or {}
            ident = source.image_identity(labels)
        except koji.GenericError as exc:
            self.logger.info('parent image %s: no Koji NVR (%s)', image, exc)
            return None
        build = self.session.getBuild(ident.nvr)
        if not build or build['state'] != koji.BUILD_STATES['COMPLETE']:
            self.warnings.append('Parent image %s (%s) is not a complete Koji build'
                                 % (image, ident.nvr))
            return None
        known = set(((build.get('extra') or {}).get('image') or {}).get('index', {})
                    .get('digests', {}).values())
        for archive in self.session.listArchives(buildID=build['id'], type='image') or []:
            # the hub keeps the CG output's whole extra: {'image': {...}, 'docker': {...}}
            docker = (archive.get('extra') or {}).get('docker')
            if isinstance(docker, dict) and isinstance(docker.get('digests'), dict):
                known.update(docker['digests'].values())
        if not set(d.split('@', 1)[1] for d in pinned.values() if d) & known:
            self.warnings.append('Parent image %s carries the labels of %s but not its '
                                 'digest: not recorded as the parent build'
                                 % (image, ident.nvr))
            return None
        return {'id': build['id'], 'nvr': build['nvr']}

    # -- manifest list
    def _push_list_by_digest(self, arch_results):
        """Store the list untagged: the registry validates it, nothing is published."""
        data, digest = cg.manifest_list_for(arch_results)
        self.registry.put_manifest(self.repository, digest, registry_mod.MEDIA_LIST, data)
        self.logger.info('manifest list %s stored by digest', digest)
        return digest

    def _publish(self, arch_results, stages):
        cg.publish_manifest_list(self.registry, self.repository, arch_results, self.tags,
                                 stages=stages, log_line=self.logger.info,
                                 scratch=self.scratch)

    def _publish_imported(self, arch_results, stages, build_id):
        """Publish tags of an imported build, retrying registry errors with backoff.

        The build is COMPLETE by now (the refund will be refused), so a registry hiccup
        must not end as a plain registry error: PUTs of the same list are idempotent.
        """
        error = None
        for delay in PUBLISH_RETRY_DELAYS + (None,):
            try:
                self._publish(arch_results, stages)
                return
            except BackendError as exc:
                error = exc
                if delay is None:
                    break
                self.logger.warning('publishing %s failed, retrying in %ss: %s',
                                    '/'.join(stages), delay, _short(exc))
                time.sleep(delay)
        tags = [t for stage in stages for t in self.tags.get(stage) or []]
        raise BackendError('%s was imported as build %s but tags %s were not published: %s'
                           % (self.identity.nvr, build_id, ', '.join(tags), _short(error)))

    # -- import and tag
    def _import(self, arch_results, child_of, index, parent_info):
        workdir = os.path.join(self.handler.workdir, 'cg-import')
        os.makedirs(workdir, exist_ok=True)
        upload_dir = 'cg_importer/%s-%s' % (self.task_id, secrets.token_hex(8))
        logs = []
        for result in arch_results:
            name = result.get('log_file') or '%s.log' % result['arch']
            path = self._fetch_child_log(child_of[result['arch']], name, workdir)
            if path:
                logs.append((path, name))
        for result in arch_results:
            filename, data = cg.placeholder_archive(result)
            self._upload_bytes(workdir, upload_dir, filename, data)
        for path, name in logs:
            self.session.uploadWrapper(path, upload_dir, name)
        parent_build, parent_image_builds = parent_info
        opts = self.plan.opts or {}
        metadata = cg.build_metadata(
            self.identity, self.plan.checkout.source, self.plan.owner, self.task_id,
            self.start_time, int(time.time()), arch_results, index=index,
            parent_build=parent_build, logs=logs, isolated=self.isolated,
            submitter=self._submitter(), build_id=self.reservation.build_id,
            yum_repourls=opts.get('yum_repourls'), parent_image_builds=parent_image_builds,
            user_metadata=opts.get('userdata'), cg_name=self.native.content_generator)
        self._upload_bytes(workdir, upload_dir, 'metadata.json',
                           cg.dumps(metadata).encode('utf-8'))
        try:
            build = self.session.CGImport('metadata.json', upload_dir,
                                          token=self.reservation.token)
        except (koji.GenericError, OSError) as exc:
            raise BackendError('Koji import of %s failed: %s' % (self.identity.nvr, _short(exc)))
        except Exception as exc:  # an xmlrpc Fault (code 1) from a hub-side KeyError
            raise BackendError('Koji import of %s failed: %s' % (self.identity.nvr, _short(exc)))
        self.reservation.imported = True
        self.logger.info('imported build %s (id %s)', self.identity.nvr, build['id'])
        return int(build['id'])

    def _submitter(self):
        try:
            user = self.session.getLoggedInUser()
            return user['name'] if user else None
        except (koji.GenericError, AttributeError):
            return None

    def _upload_bytes(self, workdir, upload_dir, name, data):
        path = os.path.join(workdir, name)
        with open(path, 'wb') as f:
            f.write(data)
        self.session.uploadWrapper(path, upload_dir, name)

    def _fetch_child_log(self, child_id, name, workdir):
        """Copy a child's `<arch>.log` from its task output (chunked); None if absent."""
        path = os.path.join(workdir, name)
        offset = 0
        chunk_size = 1024 * 1024
        with open(path, 'wb') as f:
            while True:
                try:
                    chunk = self.session.downloadTaskOutput(child_id, name, offset=offset,
                                                            size=chunk_size)
                except koji.GenericError as exc:
                    if offset == 0:
                        self.logger.warning('no %s from task %s: %s', name, child_id, exc)
                        return None
                    raise
                if not chunk:
                    break
                f.write(chunk)
                offset += len(chunk)
                if len(chunk) < chunk_size:
                    break
        return path if offset else None

    def _tag_build(self, build_id):
        dest = self.plan.target['dest_tag']
        args = [dest, build_id, False, None, True]
        child = self.children.start(TAG_METHOD, args, label='tag', arch='noarch')
        try:
            self.children.wait({child: 'tagBuild into %s' % self.plan.target['dest_tag_name']})
        except BackendError as exc:
            raise BackendError('Build %s was imported (id %s) but not tagged: %s'
                               % (self.identity.nvr, build_id, exc))

    def _result(self, build_id=None):
        tags = self.tags['unique'] + self.tags['primary'] + self.tags['floating']
        result = {'repositories': [self.pullspec(t) for t in tags],
                  'koji_builds': [str(build_id)] if build_id is not None else []}
        if self.warnings:
            result['user_warnings'] = sorted(set(self.warnings))
        return result


# ------------------------------------------------------------------ re-runs
#
# A kojid restart re-runs the task id from the start in a new process with a new work
# directory, so the reservation is kept in the task's output on the hub
# (reservation.json). A re-run refunds a reservation still BUILDING as CANCELED before
# the plan's checks (which refuse a BUILDING NVR); reserving the same NVR again then
# recycles the same build id (Koji reuses a CANCELED build without archives).
# The token is readable by whoever can read the task's output; it only works with
# CGImport/CGRefundBuild, which also require access to this content generator.

def earlier_reservation(session, task_id, cg_name, logger):
    """The reservation record an earlier run of `task_id` uploaded, or None."""
    try:
        names = session.listTaskOutput(task_id) or []
        if RESERVATION_FILE not in names:
            return None
        data = session.downloadTaskOutput(task_id, RESERVATION_FILE,
                                          size=MAX_RESERVATION_FILE)
        record = json.loads(data.decode('utf-8') if isinstance(data, bytes) else data)
    except (koji.GenericError, ValueError, UnicodeDecodeError) as exc:
        logger.warning('cannot read %s of an earlier run: %s', RESERVATION_FILE, _short(exc))
        return None
    if not (isinstance(record, dict) and type(record.get('build_id')) is int
            and isinstance(record.get('token'), str) and isinstance(record.get('nvr'), str)
            and record.get('cg') == cg_name):
        logger.warning('ignoring a malformed %s of an earlier run', RESERVATION_FILE)
        return None
    return record


def refund_earlier(session, task_id, cg_name, logger):
    """Refund (CANCELED) a reservation an earlier run of this task left BUILDING."""
    record = earlier_reservation(session, task_id, cg_name, logger)
    if record is None:
        return None
    build = session.getBuild(record['build_id'])
    if not build or build['state'] != koji.BUILD_STATES['BUILDING'] \
            or build['nvr'] != record['nvr']:
        return None
    try:
        session.CGRefundBuild(cg_name, record['build_id'], record['token'],
                              koji.BUILD_STATES['CANCELED'])
    except koji.GenericError as exc:
        logger.warning('could not refund build %s of an earlier run: %s',
                       record['build_id'], _short(exc))
        return None
    logger.info('re-run: refunded build %s (id %s) reserved by the earlier run',
                record['nvr'], record['build_id'])
    return record


def run_binary(handler, plan, config):
    """Parent buildContainer task for backend = native; returns the task result dict.

    plan: a BuildPlan, or a callable making it (then a re-run first refunds what the
    earlier run of this task reserved, so the plan's NVR check passes).
    """
    native = native_config.from_builder_config(config)
    if callable(plan):
        refund_earlier(handler.session, handler.id, native.content_generator, handler.logger)
        plan = plan()
    return ParentBuild(handler, plan, config, native).run()


# ------------------------------------------------------------------ per arch

def _check_params(arch, params):
    if not isinstance(params, dict):
        raise OptionError('createContainer: params must be a dict')
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise OptionError('createContainer: missing params %s' % ', '.join(missing))
    if not re.match(r'^[A-Za-z0-9_]+$', str(arch)):
        raise OptionError('createContainer: invalid arch %r' % (arch,))
    rel = params['dockerfile']
    if not isinstance(rel, str) or os.path.isabs(rel) or '..' in rel.split('/'):
        raise OptionError('createContainer: invalid Dockerfile path %r' % (rel,))
    return params


def koji_repo_file(path, topurl, build_tag, repo_id, arch):
    """Write the .repo file for the build tag's Koji repo of `arch`; return its path."""
    baseurl = '%s/repos/%s/%s/%s/' % (topurl.rstrip('/'), build_tag, repo_id, arch)
    name = re.sub(r'[^\w.-]', '_', 'koji-%s-%s' % (build_tag, repo_id))
    with open(path, 'w') as f:
        f.write('[%s]\nname=Koji repo %s (%s) %s\nbaseurl=%s\nenabled=1\ngpgcheck=0\n'
                'skip_if_unavailable=False\n' % (name, build_tag, repo_id, arch, baseurl))
    return path


def fetch_repo_file(url, path, timeout):
    """Download one yum_repourls .repo file (bounded size) to `path`."""
    import requests
    safe = scmurl.redact(url)
    try:
        with requests.get(url, timeout=timeout, stream=True) as resp:
            if resp.status_code != 200:
                raise BackendError('Cannot fetch yum repo file %s: HTTP %s'
                                   % (safe, resp.status_code))
            data = b''
            for chunk in resp.iter_content(65536):
                data += chunk
                if len(data) > MAX_REPO_FILE:
                    raise BackendError('Yum repo file %s is larger than %d bytes'
                                       % (safe, MAX_REPO_FILE))
    except requests.exceptions.RequestException as exc:
        raise BackendError('Cannot fetch yum repo file %s: %s'
                           % (safe, scmurl.redact(_short(exc))))
    if b'[' not in data:
        raise BackendError('Yum repo file %s has no [section]' % safe)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def rewrite_base(text, base_image):
    """Dockerfile text with the final stage's base replaced by `base_image`
    (koji_parent_build); FROM scratch cannot be replaced."""
    froms = native_build.from_instructions(text)
    final = froms[-1]
    aliases = set(f['alias'] for f in froms[:-1] if f['alias'])
    if final['image'] == 'scratch' or final['image'].lower() in aliases:
        raise OptionError('koji_parent_build cannot replace FROM %s' % final['image'])
    lines = text.splitlines()
    words = ['FROM'] + final['flags'] + [base_image]
    if final['alias']:
        words += ['AS', final['alias']]
    lines[final['first']:final['last'] + 1] = [' '.join(words)]
    return '\n'.join(lines) + '\n'


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
        workdir = self.handler.workdir
        log_name = '%s.log' % self.arch
        relay = LogRelay(self.session, self.handler.getUploadDir(), workdir,
                         flush_interval=getattr(self.config, 'log_flush_interval', 0.5),
                         retry_timeout=getattr(self.config, 'retry_timeout', 300.0),
                         logger=self.logger)
        canceled = False
        storage_parent = self.native.task_storage_parent(self.handler.id, workdir)
        try:
            storage = self.native.task_storage(self.handler.id, workdir)
            result = self._build(relay, log_name, workdir, storage)
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
                self.arch, type(exc).__name__, _short(scmurl.redact(str(exc)))))
            relay.write(log_name, 'ERROR: %s' % error)
            raise error from None
        finally:
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

    def _build(self, relay, log_name, workdir, storage):
        params = self.params

        def log_line(line):
            relay.write(log_name, line)

        checkout = source.fetch_full_tree(
            self.src, os.path.join(workdir, 'source'), self.handler.options,
            session=self.session, logger=self.logger,
            policy_data={'user_id': self._owner_id(), 'scratch': params['scratch']})
        srcdir = checkout.srcdir
        dockerfile = params['dockerfile']
        if not os.path.isfile(os.path.join(srcdir, dockerfile)):
            raise BackendError('%s not found in %s' % (dockerfile, scmurl.redact(self.src)))
        if params['base_image']:
            path = os.path.join(srcdir, dockerfile)
            with open(path) as f:
                text = f.read()
            dockerfile = '.Dockerfile.koji-parent'
            with open(os.path.join(srcdir, dockerfile), 'w') as f:
                f.write(rewrite_base(text, params['base_image']))
            log_line('koji_parent_build: final stage FROM %s' % params['base_image'])
        repos_dir = os.path.join(workdir, 'repos')
        os.makedirs(repos_dir, exist_ok=True)
        repo_files = [koji_repo_file(os.path.join(repos_dir, 'koji.repo'),
                                     self.handler.options.topurl, params['build_tag'],
                                     params['repo_id'], self.arch)]
        for index, url in enumerate(params['yum_repourls']):
            repo_files.append(fetch_repo_file(
                url, os.path.join(repos_dir, 'extra-%d.repo' % index),
                self.native.yum_repourl_timeout))
        registry = registry_mod.Registry(self.native.registry, **self.native.registry_kwargs())
        ident = params['identity']
        labels = native_build.koji_labels(ident, self.arch, vcs_url=params['labels'].get('vcs-url'),
                                          vcs_ref=params['labels'].get('vcs-ref'))
        settings = self.native.build_settings(storage)
        log_line('Building %s for %s in task %s' % (ident['nvr'], self.arch, self.handler.id))
        return native_build.build_arch(
            srcdir, dockerfile, self.arch, ident, labels, repo_files, registry,
            params['repository'], params['unique_tag'], os.path.join(workdir, 'build'),
            log_line, settings)

    def _owner_id(self):
        try:
            return self.handler.taskinfo['owner']
        except (koji.GenericError, KeyError, TypeError):
            return None


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
