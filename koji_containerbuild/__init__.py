"""koji-containerbuild: container image builds as native Koji tasks."""

__version__ = '2.0.0'
