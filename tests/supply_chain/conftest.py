"""The native fixtures (registry on 127.0.0.1, buildah storage, prepared examples), for
the supply-chain tests' own instances in each worker."""

from tests.native.conftest import examples, native_dir, registry  # noqa: F401
