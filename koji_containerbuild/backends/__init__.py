"""Build backends: OSBS (osbs-client) and native (buildah)."""
