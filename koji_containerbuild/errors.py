"""Typed Koji faults raised by koji-containerbuild.

Every class derives from a `koji.GenericError` subclass and keeps that class's
`faultCode`, so hub and builder turn them into XML-RPC faults that existing
clients (koji CLI, rpkg/fedpkg, Koji web) map back to known koji exceptions.
Only the local command's own process, which talks to no hub, derives them from
koji-free copies of those classes instead (local/faults.py: its start-up would
otherwise pay 0.1 s for `import koji`).
"""

import sys

_local = sys.modules.get('koji_containerbuild.local.faults')
if _local is not None and _local.WANTED and 'koji' not in sys.modules:
    _bases = _local
else:
    import koji as _bases


class OptionError(_bases.ParameterError):
    """A build option, the target or the source URL is invalid (1019)."""


class PermissionDenied(_bases.ActionNotAllowed):
    """The caller may not do what was asked (1004)."""


class ConfigError(_bases.ConfigurationError):
    """A plugin configuration file is missing a value or holds a bad one (1021)."""


class SourceError(_bases.BuildError):
    """The source repository, Dockerfile or its labels are not acceptable (1005)."""


class BuildCheckError(_bases.BuildError):
    """Koji state forbids the build: package not listed, NVR taken, no arches (1005)."""


class BackendError(_bases.BuildError):
    """The build backend (OSBS or buildah) failed or is unavailable (1005)."""


class BuildCanceled(_bases.BuildError):
    """The build was cancelled, on the Koji side or the backend's (1005)."""
