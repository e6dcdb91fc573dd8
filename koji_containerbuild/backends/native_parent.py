"""Native backend, Koji side: the `buildContainer` parent flow (per arch: native_arch).

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

import os
import re
import time
import xmlrpc.client

import koji

from koji_containerbuild import (cg, hermetic, native_build, ownership,
                                 registry as registry_mod, source, tag_guard)
from koji_containerbuild.backends import (native_cleanup, native_config, native_import,
                                          native_rerun)
from koji_containerbuild.backends.native_children import Children
from koji_containerbuild.backends.native_common import short
from koji_containerbuild.backends.native_reserve import (Reservation, intent_record,
                                                         settle_earlier, write_record)
from koji_containerbuild.errors import BackendError, OptionError

CHILD_METHOD = 'createContainer'
TAG_METHOD = 'tagBuild'
MAX_RELEASE_TRIES = 20
PUBLISH_RETRY_DELAYS = (2, 5, 15, 30)   # seconds between tries to publish tags
# Options only the OSBS backend can honour: refused instead of silently ignored.
OSBS_ONLY_OPTS = ('compose_ids', 'signing_intent', 'dependency_replacements',
                  'operator_csv_modifications_url')


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
    match = re.match(r'^(\d+)(.*)\Z', release or '')
    if not match:
        raise BackendError('Cannot increment release %r' % (release,))
    return '%d%s' % (int(match.group(1)) + 1, match.group(2))


# ------------------------------------------------------------------ parent

class ParentBuild(native_import.ImportSteps):
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
        tag_guard.check_binding(self.repository, self.identity.component,
                                native.repository_binding)
        self.unique = unique_tag(native.unique_tag_format, plan.target['name'], self.task_id)
        self.children = Children(handler, native.poll_interval)
        # every step the outside world sees is preceded by fence.check (see ownership)
        self.fence = ownership.of_handler(handler)
        self.reservation = Reservation(self.session, native.content_generator, self.logger,
                                       fence=self.fence)
        self.start_time = int(time.time())
        self.tags = None    # known once the release is (auto-release)
        self.list_digest = None   # the manifest list, once stored by digest
        self.hermetic = False     # decided with the refusals, before the reservation

    def pullspec(self, ref):
        return self.registry.pullspec(self.repository, ref)

    # -- flow
    def run(self):
        self._refuse_unsupported()
        try:
            return self._run()
        except (KeyboardInterrupt, SystemExit):
            # kojid cancels by signals; about 3 s until SIGTERM: refund first.
            self.reservation.refund(canceled=True)
            self._remove_leftovers()
            raise
        except koji.GenericError:
            self.reservation.refund(canceled=False)
            self._remove_leftovers()
            raise
        except Exception as exc:
            self.reservation.refund(canceled=False)
            self._remove_leftovers()
            self.logger.exception('native build failed')
            raise BackendError('Native build failed: %s: %s' % (type(exc).__name__,
                                                                short(exc)))

    def _remove_leftovers(self):
        """What a build that did not complete pushed (native_cleanup): never for an
        imported build (its tags are the build's), never from an orphan."""
        if self.reservation.imported or self.fence.orphaned():
            return
        try:
            native_cleanup.delete_left(
                self.registry, self.repository,
                native_cleanup.arch_tags(self.unique, self.plan.arches), self.logger,
                digests=[self.list_digest])
        except Exception as exc:   # cleanup must not hide the build's own error
            self.logger.warning('registry cleanup failed: %s', short(exc))

    def _refuse_unsupported(self):
        opts = self.plan.opts or {}
        for name in OSBS_ONLY_OPTS:
            if opts.get(name):
                raise OptionError("Option %r is not supported by the native backend "
                                  "(it needs backend = osbs)" % name)
        if getattr(self.plan, 'flatpak', False) or opts.get('flatpak'):
            raise OptionError('Flatpak builds are not supported by the native backend '
                              '(they need backend = osbs)')
        # before anything is reserved: a hermetic build takes no network sources
        self.hermetic = hermetic.wanted(self.native.hermetic,
                                        getattr(self.plan, 'container_yaml', None))
        if self.hermetic:
            hermetic.refuse_network_sources(opts)
            if not opts.get('koji_parent_build'):   # else the subtask checks the rewrite
                data = source.read_file(self.plan.checkout.dockerfile_path,
                                        native_build.MAX_DOCKERFILE, 'Dockerfile')
                hermetic.check_dockerfile(native_build.parse_dockerfile(data),
                                          self.registry.host)

    def _run(self):
        self._reserve()
        self.tags = self._tag_plan()
        # before the first PUT (the per-arch pushes): may this build move these tags?
        tag_guard.check_tags(self.registry, self.repository, self.tags, self.identity.component,
                             arch_tags=['%s-%s' % (self.unique, a) for a in self.plan.arches])
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
            self._attach_supply_chain(self._supply_docs(arch_results, child_of,
                                                        (parent_build, None)))
            return self._result()
        parent_info = self._parent_images(arch_results, parent_build)
        build_id = self._import(arch_results, child_of, index, parent_info)
        # Only now may the NVR tag exist; floating tags wait for the Koji tag to succeed.
        self._publish_imported(arch_results, ('unique', 'primary'), build_id)
        self._attach_supply_chain(self.supply_docs, build_id)
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
            # no reservation; the record lets a re-run remove what this run pushed
            self.fence.check('recording the scratch build', hub=False)
            write_record(self.handler, dict(self._record_base(), scratch=True,
                                            build_id=None, token=None))
            return
        for _attempt in range(MAX_RELEASE_TRIES):
            if auto and not self._nvr_free():
                self.identity.release = bump_release(self.identity.release)
                continue
            # the intent first: a kill before the answer is recorded still leaves a trace.
            # An orphan writes nothing: it would overwrite the re-run's record.
            self.fence.check('recording the reservation intent', hub=False)
            write_record(self.handler, intent_record(
                self.identity.nvr, self.native.content_generator, self.task_id))
            try:
                self.reservation.reserve(self.identity, task_id=self.task_id,
                                         owner=self.plan.owner)
                self.fence.check('recording the reservation', hub=False)
                self._record_reservation()
                return
            except BackendError:
                if not auto:
                    raise
                self.identity.release = bump_release(self.identity.release)
        raise BackendError('No free release found for %s-%s after %d tries'
                           % (self.identity.component, self.identity.version,
                              MAX_RELEASE_TRIES))

    def _tag_plan(self):
        return cg.tag_plan(self.identity, scratch=self.scratch, isolated=self.isolated,
                           additional_tags=getattr(self.plan, 'additional_tags', None) or (),
                           unique=self.unique)

    def _record_reservation(self):
        """Keep the reservation on the hub for a re-run of this task (native_reserve),
        with what a re-run needs to finish an imported build (native_rerun)."""
        res = self.reservation
        write_record(self.handler, dict(self._record_base(), build_id=res.build_id,
                                        token=res.token))

    def _record_base(self):
        return {'nvr': self.identity.nvr, 'cg': self.native.content_generator,
                'task_id': self.task_id, 'repository': self.repository,
                'tags': self._tag_plan(), 'arches': list(self.plan.arches),
                'dest_tag': self.plan.target['dest_tag']}

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
            'hermetic': self.hermetic,
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
        """The build tag's repo as kojid's own build tasks get it (BaseTaskHandler.getRepo):
        on Koji 1.35+ a repo is made on request, so ask for one and, if none is ready,
        wait for it in a `waitrepo` subtask."""
        build_tag = self.plan.target['build_tag_name']
        self.children.fence.check('requesting a repo of %s' % build_tag)
        try:
            repo = self.handler.getRepo(self.plan.target['build_tag'])
        except (koji.GenericError, xmlrpc.client.Fault) as exc:
            raise BackendError(
                'No repository of build tag %s became ready (%s). On Koji 1.35 and later a '
                'repo is made only on request, by kojira or by a builder in the createrepo '
                'channel (`koji regen-repo %s` alone only queues a request): check that '
                'kojira runs and that the createrepo channel has a working host'
                % (build_tag, short(getattr(exc, 'faultString', None) or exc), build_tag))
        if not repo or 'id' not in repo:
            raise BackendError('No repository of build tag %s (getRepo returned %r)'
                               % (build_tag, repo))
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
            # registry answers are checked by one parser (registry.image_labels)
            ident = source.image_identity(self.registry.image_labels(repo, digest))
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
        self.fence.check('the manifest list PUT')
        self.list_digest = digest
        self.registry.put_manifest(self.repository, digest, registry_mod.MEDIA_LIST, data)
        self.logger.info('manifest list %s stored by digest', digest)
        return digest

    def _publish(self, arch_results, stages):
        self.fence.check('publishing the %s tags' % '/'.join(stages))
        cg.publish_manifest_list(self.registry, self.repository, arch_results, self.tags,
                                 stages=stages, log_line=self.logger.info,
                                 scratch=self.scratch, component=self.identity.component)

    def _retry_delays(self):
        return PUBLISH_RETRY_DELAYS

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
                if delay is None or isinstance(exc, tag_guard.TagRefused):   # not transient
                    break
                self.logger.warning('publishing %s failed, retrying in %ss: %s',
                                    '/'.join(stages), delay, short(exc))
                time.sleep(delay)
        tags = [t for stage in stages for t in self.tags.get(stage) or []]
        raise BackendError('%s was imported as build %s but tags %s were not published: %s'
                           % (self.identity.nvr, build_id, ', '.join(tags), short(error)))

    # -- tag
    def _tag_build(self, build_id):
        dest = self.plan.target['dest_tag']
        args = [dest, build_id, False, None, True]
        self.fence.check('tagBuild of %s' % self.identity.nvr)
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


def run_binary(handler, plan, config):
    """Parent buildContainer task for backend = native; returns the task result dict.

    plan: a BuildPlan, or a callable making it. Then a re-run (kojid restart) first
    deals with what the earlier run of this task left (native_reserve.settle_earlier):
    an imported build is finished and its result returned, never built again; a
    reservation still BUILDING is refunded so the plan's NVR check passes.
    """
    native = native_config.from_builder_config(config)
    native.check_registry()     # fails in seconds, before anything is reserved
    if callable(plan):
        done = settle_earlier(handler.session, handler.id, native.content_generator,
                              handler.logger)
        if done is not None and done[0] == 'imported':
            return native_rerun.finish(handler, native, done[1], done[2])
        if done is not None and done[0] in ('refunded', 'scratch'):
            native_cleanup.remove_earlier(handler, native, done[2],
                                          unique_too=done[0] == 'scratch')
        plan = plan()
    return ParentBuild(handler, plan, config, native).run()
