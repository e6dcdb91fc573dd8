"""koji CLI plugin: `koji container-build`, `koji flatpak-build`, `koji source-container-build`.

The koji CLI imports every plugin on every command (even `koji help`), so this file
imports only what koji itself has already loaded; the work lives in
koji_containerbuild.cli_support and is imported when one of these commands runs.
"""

from koji.plugin import export_cli


def _run(command, goptions, session, args):
    from koji_containerbuild import cli_support
    return cli_support.run(command, goptions, session, args)


@export_cli
def handle_container_build(goptions, session, args):
    "[build] Build a container image from an SCM URL"
    return _run('container-build', goptions, session, args)


@export_cli
def handle_flatpak_build(goptions, session, args):
    "[build] Build a Flatpak from an SCM URL"
    return _run('flatpak-build', goptions, session, args)


@export_cli
def handle_source_container_build(goptions, session, args):
    "[build] Build a source container image for an existing image build"
    return _run('source-container-build', goptions, session, args)
