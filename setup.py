"""Install koji-containerbuild: the library, and the koji CLI plugin.

The CLI plugin goes into site-packages/koji_cli_plugins/, the folder the koji CLI
scans for plugins (only under sys.prefix, so `pip install --user` is not seen).
"""

import re

from setuptools import find_packages, setup

with open('koji_containerbuild/__init__.py') as f:
    VERSION = re.search(r"__version__ = '([^']+)'", f.read()).group(1)

setup(
    name='koji-containerbuild',
    version=VERSION,
    description='Container image builds as native Koji tasks (OSBS or buildah backends)',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='LGPL-2.1-or-later',
    python_requires='>=3.9',
    # Every library subpackage (the tree grows), never the tests; plus the CLI plugin folder.
    packages=find_packages(include=['koji_containerbuild', 'koji_containerbuild.*'])
    + ['koji_cli_plugins'],
    # The CLI plugin file lives in cli/ (no __init__.py: koji loads every *.py there).
    package_dir={'koji_cli_plugins': 'cli'},
    install_requires=['koji>=1.35', 'jsonschema', 'requests', 'PyYAML'],
    extras_require={
        'test': ['pytest', 'pytest-xdist', 'hypothesis', 'wheel', 'spdx-tools', 'jsonschema'],
    },
    entry_points={
        'console_scripts': ['koji-containerbuild = koji_containerbuild.local.cli:main'],
    },
)
