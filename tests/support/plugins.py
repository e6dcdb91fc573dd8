"""Load the builder plugin the way kojid does, once per test process.

koji.plugin.PluginTracker refuses a second load of the same name in one process
("module name conflict"), and pytest-xdist may run several test folders that need the
plugin in one worker.
"""

import os
import sys

import koji.plugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def builder_plugin():
    loaded = sys.modules.get('_koji_plugin__builder_containerbuild')
    if loaded is not None:
        return loaded
    return koji.plugin.PluginTracker(path=os.path.join(ROOT, 'builder')).load(
        'builder_containerbuild')
