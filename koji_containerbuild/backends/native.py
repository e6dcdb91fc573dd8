"""Native backend, Koji side (see native_parent for the flow, native_arch for the
per-arch subtask). This module keeps the names callers and configs know."""

from koji_containerbuild.backends.native_arch import (  # noqa: F401
    MAX_REPO_FILE, PARAM_KEYS, ArchBuild, fetch_repo_file, koji_repo_file, rewrite_base,
    run_arch)
from koji_containerbuild.backends.native_children import MAX_RUNS, Children  # noqa: F401
from koji_containerbuild.backends.native_common import FINISHED  # noqa: F401
from koji_containerbuild.backends.native_parent import (  # noqa: F401
    CHILD_METHOD, MAX_RELEASE_TRIES, OSBS_ONLY_OPTS, TAG_METHOD, ParentBuild, bump_release,
    pullable_ref, repository_for, run_binary, unique_tag)
from koji_containerbuild.backends.native_reserve import (  # noqa: F401
    RESERVATION_FILE, Reservation, earlier_reservation, refund_earlier)
