"""Typed Koji faults raised by koji-containerbuild.

Every class derives from a `koji.GenericError` subclass and keeps that class's
`faultCode`, so hub and builder turn them into XML-RPC faults that existing
clients (koji CLI, rpkg/fedpkg, Koji web) map back to known koji exceptions.
"""

import koji


class OptionError(koji.ParameterError):
    """A build option, the target or the source URL is invalid (1019)."""


class PermissionDenied(koji.ActionNotAllowed):
    """The caller may not do what was asked (1004)."""


class ConfigError(koji.ConfigurationError):
    """A plugin configuration file is missing a value or holds a bad one (1021)."""


class SourceError(koji.BuildError):
    """The source repository, Dockerfile or its labels are not acceptable (1005)."""


class BuildCheckError(koji.BuildError):
    """Koji state forbids the build: package not listed, NVR taken, no arches (1005)."""


class BackendError(koji.BuildError):
    """The build backend (OSBS or buildah) failed or is unavailable (1005)."""


class BuildCanceled(koji.BuildError):
    """The build was cancelled, on the Koji side or the backend's (1005)."""
