"""koji-containerbuild builder plugin (kojid): buildContainer, buildSourceContainer and
createContainer task handlers.

Enable with `plugins = builder_containerbuild` in kojid.conf; settings live in
/etc/kojid/plugins/builder_containerbuild.conf (see docs/osbs.md). This file is an
adapter: Koji in, library call, Koji out. osbs-client and the native backend are
imported only when a task needs them, so kojid loads the plugin without either.
"""

import os

import koji
import koji.daemon
import koji.tasks

from koji_containerbuild import config as builder_config
from koji_containerbuild import plan as build_plan
from koji_containerbuild import checkout_log, ownership, scmurl, source
from koji_containerbuild.backends.retry import TaskLost
from koji_containerbuild.errors import OptionError, PermissionDenied, SourceError
from koji_containerbuild.logs import SerializedSession

CONFIG_FILE = builder_config.DEFAULT_CONFIG_FILE


class _ContainerTask(koji.tasks.BaseTaskHandler):
    """Shared plumbing; kojid registers only classes with Methods."""

    Methods = []
    # A container build mostly waits on OSBS or on buildah subtasks; the clone and the
    # log relay still cost a little more than an idle task.
    _taskWeight = 2.0
    config_file = CONFIG_FILE

    def __init__(self, *args, **kwargs):
        super(_ContainerTask, self).__init__(*args, **kwargs)
        # kojid builds the handler in its own process (takeTask), forks, and only then
        # swaps in the task's subsession: what belongs to the task process is set up in
        # run(), in that process.
        self.parent_pid = None
        self.ownership = None

    def run(self):
        self.enter_task_process()
        return super(_ContainerTask, self).run()

    def enter_task_process(self):
        """Set up what belongs to the task process (called first thing in run())."""
        # kojid's pid, taken as early as possible in the task process: if kojid dies at
        # any point (even during the fetch or the create), this process is an orphan and
        # must neither act nor remove the work directory the re-run of this task shares.
        self.parent_pid = os.getppid()
        # The log relay uploads from a thread while this one polls the hub; koji's
        # ClientSession numbers its calls, so both must go through one lock.
        if not isinstance(self.session, SerializedSession):
            self.session = SerializedSession(self.session)
        self.ownership = ownership.TaskOwnership(self.id, self.session, self.parent_pid)

    def load_config(self):
        return builder_config.load_builder_config(self.config_file)

    def scm_hook(self, src):
        """plan's scm_hook: kojid's pre/postSCMCheckout callbacks (e.g. the scmpolicy
        plugin's `scm` policy), as kojid's own build tasks run them."""
        def hook(name, **kwargs):
            scminfo = source.make_scm(src, self.options).get_info()
            self._callbacks(name, src, scminfo=scminfo, **kwargs)
        return hook

    def logged_fetch(self, src, workdir, options, **kwargs):
        """source.fetch_source, leaving kojid's `checkout.log` in the task output."""
        return checkout_log.logged(self, source.fetch_source, src, workdir, options,
                                   **kwargs)

    def _callbacks(self, name, src, **kwargs):
        """run_callbacks; a refusing callback (koji wraps its error, traceback included,
        in a CallbackError) becomes a fault carrying the callback's own message."""
        try:
            self.run_callbacks(name, **kwargs)
        except koji.CallbackError as exc:
            cause = exc.__context__ if exc.__context__ is not None else exc
            message = scmurl.redact(str(getattr(cause, 'faultString', None) or cause))[:2000]
            text = '%s callback refused %s: %s' % (name, scmurl.redact(src), message)
            if isinstance(cause, koji.ActionNotAllowed):
                raise PermissionDenied(text)
            raise SourceError(text)

    def guarded(self, func):
        """Run the backend; an orphan that lost its task leaves the work directory alone
        (the re-run of the same task id uses the same path)."""
        try:
            return func()
        except ownership.TaskCanceled:
            raise             # cancelled: the work directory goes as usual
        except TaskLost:
            self.logger.warning('Task %s lost (kojid gone or task re-run elsewhere); stopping '
                                'without touching the OSBS run', self.id)
            self.workdir = None
            raise
        finally:
            if ownership.of_handler(self).orphaned():
                # an orphan, whatever it is raising: BaseTaskHandler.run must not
                # remove the work directory under the re-run
                self.workdir = None


class BuildContainerTask(_ContainerTask):
    Methods = ['buildContainer']

    def handler(self, src, target, opts=None):
        config = self.load_config()

        def make_plan():
            return build_plan.prepare_binary(self.session, self.id, src, target, opts,
                                             self.options, self.workdir, logger=self.logger,
                                             scm_hook=self.scm_hook(src),
                                             fetch=self.logged_fetch)
        if config.backend == 'native':
            from koji_containerbuild.backends import native
            return self.guarded(lambda: native.run_binary(self, make_plan, config))
        from koji_containerbuild.backends import osbs
        return self.guarded(lambda: osbs.run_binary(self, config, make_plan))


class BuildSourceContainerTask(_ContainerTask):
    Methods = ['buildSourceContainer']

    def handler(self, target, opts=None):
        config = self.load_config()
        refuse_unless(config, 'osbs', 'buildSourceContainer')

        def make_plan():
            return build_plan.prepare_source(self.session, self.id, target, opts,
                                             self.options, self.workdir, logger=self.logger)
        from koji_containerbuild.backends import osbs
        return self.guarded(lambda: osbs.run_source(self, config, make_plan))


class CreateContainerTask(_ContainerTask):
    """Per-arch child of a native buildContainer (runs buildah on this builder)."""

    Methods = ['createContainer']
    _taskWeight = 2.0

    def handler(self, src, target, arch, params):
        config = self.load_config()
        refuse_unless(config, 'native', 'createContainer')
        for name, value in (('src', src), ('target', target), ('arch', arch)):
            if not isinstance(value, str) or not value:
                raise OptionError('createContainer: %s must be a non-empty string, got %s'
                                  % (name, type(value).__name__))
        if not isinstance(params, dict):
            raise OptionError('createContainer: params must be a dict, got %s'
                              % type(params).__name__)
        from koji_containerbuild.backends import native
        # an orphan must not remove the work directory its task's re-run uses
        return self.guarded(lambda: native.run_arch(self, config, src, target, arch, params))


def refuse_unless(config, backend, method):
    """A builder whose backend cannot run `method` gives the task back to the hub
    (koji.tasks.RefuseTask -> host.refuseTask), which offers it to another host of the
    channel, instead of failing the build."""
    if config.backend != backend:
        raise koji.tasks.RefuseTask(
            '%s tasks need backend = %s on the builder (%s has backend = %s)'
            % (method, backend, config.path, config.backend))
