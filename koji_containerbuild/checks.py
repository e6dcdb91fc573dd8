"""Koji-state checks before a container build: target, arches, package list, NVR.

All take a hub session (kojid's task session or a ClientSession) and raise errors.*
faults with a message naming the target, tag, package or NVR concerned.
"""

import koji

from koji_containerbuild import options as options_model
from koji_containerbuild.errors import BuildCheckError, OptionError

FREE_STATES = (koji.BUILD_STATES['FAILED'], koji.BUILD_STATES['CANCELED'])


def resolve_target(session, target, event=None):
    """Target info at `event`, plus 'build_config' (getBuildConfig of its build tag)."""
    if not isinstance(target, (str, int)) or isinstance(target, bool) or target == '':
        raise OptionError('Invalid target %r: a build target name is required' % (target,))
    info = session.getBuildTarget(target, event=event)
    if not info:
        raise OptionError('Unknown build target: %s' % (target,))
    try:
        config = session.getBuildConfig(info['build_tag'], event=event)
    except koji.GenericError as exc:
        raise BuildCheckError('Build tag %s of target %s cannot be read: %s'
                              % (info.get('build_tag_name'), info.get('name'), exc))
    if not config:
        raise BuildCheckError('Build tag %s of target %s does not exist'
                              % (info.get('build_tag_name'), info.get('name')))
    dest = session.getTag(info['dest_tag'], event=event)
    if not dest:
        raise BuildCheckError('Destination tag %s of target %s does not exist'
                              % (info.get('dest_tag_name'), info.get('name')))
    result = dict(info)
    result['build_config'] = config
    result['dest_tag_info'] = dest
    return result


def _canon(arches):
    result = []
    for arch in arches:
        canon = koji.canonArch(arch)
        if canon not in result:
            result.append(canon)
    return result


def build_arches(session, build_tag, arch_override, scratch, isolated, event=None,
                 logger=None):
    """Canonical arches to build for, in the build tag's order.

    build_tag: a tag name/id, or the getBuildConfig dict already read.
    arch_override (string of arches) is honoured only for scratch or isolated builds,
    and only arches the build tag has are kept.
    """
    if isinstance(build_tag, dict):
        config = build_tag
    else:
        try:
            config = session.getBuildConfig(build_tag, event=event)
        except koji.GenericError as exc:
            raise BuildCheckError('Build tag %s cannot be read: %s' % (build_tag, exc))
        if not config:
            raise BuildCheckError('Build tag %s does not exist' % (build_tag,))
    tag_name = config.get('name', build_tag)
    tag_arches = _canon((config.get('arches') or '').split())
    if not tag_arches:
        raise BuildCheckError('Build tag %s has no arches configured' % tag_name)
    requested = options_model.arch_list(arch_override) if arch_override else []
    if not requested:
        return tag_arches
    if not (scratch or isolated):
        raise BuildCheckError('arch_override (%s) is only allowed for scratch or isolated '
                              'builds' % ' '.join(requested))
    wanted = _canon(requested)
    arches = [a for a in wanted if a in tag_arches]
    dropped = [a for a in wanted if a not in tag_arches]
    if not arches:
        raise BuildCheckError('None of the requested arches (%s) are in build tag %s '
                              '(arches: %s)' % (' '.join(wanted), tag_name,
                                                ' '.join(tag_arches)))
    if dropped and logger is not None:
        logger.warning('Ignoring arches not in build tag %s: %s', tag_name, ' '.join(dropped))
    return arches


def check_package_allowed(session, dest_tag, component, event=None):
    """The component must be listed, and not blocked, in the destination tag."""
    try:
        config = session.getPackageConfig(dest_tag, component, event=event)
    except koji.GenericError as exc:
        raise BuildCheckError('Cannot check package %s in tag %s: %s'
                              % (component, dest_tag, exc))
    if not config:
        raise BuildCheckError('Package %s is not in the package list of tag %s; ask a Koji '
                              'admin to add it (koji add-pkg)' % (component, dest_tag))
    if config.get('blocked'):
        raise BuildCheckError('Package %s is blocked in tag %s' % (component, dest_tag))
    return config


def check_nvr_free(session, nvr):
    """No build with this NVR may exist, unless it FAILED or was CANCELED."""
    build = session.getBuild(nvr)
    if not build:
        return None
    if build.get('state') in FREE_STATES:
        return build
    state = koji.BUILD_STATES.get(build.get('state'), build.get('state'))
    raise BuildCheckError('Build %s already exists (id %s, state %s); bump the release to '
                          'build again' % (nvr, build.get('id'), state))
