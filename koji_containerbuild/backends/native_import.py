"""Native backend, parent task: the content-generator import of a finished build.

A mixin of native_parent.ParentBuild (the parent's state: handler, plan, reservation,
fence, registry): the per-arch logs copied from the children, the placeholder archives,
the SBOM and provenance, metadata.json, CGImport with the reservation's token, and
attaching the supply-chain documents after the import.
"""

import os
import secrets
import time

import koji

from koji_containerbuild import cg, ownership, supply_chain
from koji_containerbuild.backends.native_common import short
from koji_containerbuild.errors import BackendError


class ImportSteps(object):
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
            user_metadata=opts.get('userdata'), cg_name=self.native.content_generator,
            hermetic=self.hermetic)
        self.supply_docs = self._supply_docs(arch_results, child_of, parent_info)
        for name, data in supply_chain.files(self.supply_docs):
            self._upload_bytes(workdir, upload_dir, name, data)
        supply_chain.add_to_metadata(metadata, self.supply_docs)
        self._upload_bytes(workdir, upload_dir, 'metadata.json',
                           cg.dumps(metadata).encode('utf-8'))
        self.fence.check('CGImport of %s' % self.identity.nvr)
        try:
            build = self.session.CGImport('metadata.json', upload_dir,
                                          token=self.reservation.token)
        except (koji.GenericError, OSError) as exc:
            raise BackendError('Koji import of %s failed: %s' % (self.identity.nvr, short(exc)))
        except Exception as exc:  # an xmlrpc Fault (code 1) from a hub-side KeyError
            raise BackendError('Koji import of %s failed: %s' % (self.identity.nvr, short(exc)))
        self.reservation.imported = True
        self.logger.info('imported build %s (id %s)', self.identity.nvr, build['id'])
        return int(build['id'])

    def _supply_docs(self, arch_results, child_of, parent_info):
        """SBOM + provenance of every arch image (supply_chain.py)."""
        return supply_chain.koji_documents(
            self.handler.options.server, self.task_id, self.plan, self._dockerfile_relpath(),
            arch_results, child_of, parent_build=parent_info[0],
            parent_image_builds=parent_info[1], build_id=self.reservation.build_id,
            unique_tag=self.unique, content_generator=self.native.content_generator,
            hermetic=self.hermetic)

    def _attach_supply_chain(self, docs, build_id=None):
        """Attach the documents to the per-arch images (after the import, like tags)."""
        ownership.of_handler(self.handler).check('attach SBOM and provenance')
        try:
            supply_chain.attach_with_retries(self.registry, self.repository, docs,
                                             self.logger.info, self._retry_delays())
        except BackendError as exc:
            if build_id is None:
                raise
            raise BackendError('%s was imported as build %s but its SBOM and provenance '
                               'were not attached in the registry: %s'
                               % (self.identity.nvr, build_id, short(exc)))

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
