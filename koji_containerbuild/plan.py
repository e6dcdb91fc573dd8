"""Everything a backend needs before it starts a build, checked once, in Koji's order.

prepare_binary (buildContainer, binary and flatpak) and prepare_source
(buildSourceContainer) validate the task's opts again (the hub may run an older plugin),
read Koji state at one event, fetch and check the source, and return a plan object.
They raise errors.* faults only.
"""

import jsonschema

import koji

from koji_containerbuild import checks, options as options_model, scmurl, source
from koji_containerbuild.errors import BuildCheckError, OptionError


class BuildPlan(object):
    """A checked buildContainer request (attributes documented in docs/source-checks.md)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return 'BuildPlan(task_id=%r, nvr=%r)' % (self.task_id, self.identity.nvr)


class SourcePlan(object):
    """A checked buildSourceContainer request."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return 'SourcePlan(task_id=%r, build=%r)' % (self.task_id, self.build_nvr)


# ------------------------------------------------------------------ opts

def _schema_message(error):
    """An OptionError message naming the option for one jsonschema error.

    jsonschema quotes the offending value: mask any URL userinfo in it.
    """
    path = [p for p in error.absolute_path]
    text = options_model.mask_userinfo(error.message[:300])
    if path:
        return 'Invalid option %r: %s' % (path[0], text)
    if error.validator == 'additionalProperties':
        return 'Unknown option(s): %s' % text
    if error.validator == 'required':
        return 'Missing option: %s' % text
    if error.validator == 'type':
        return 'Invalid opts: must be a dict of build options'
    return 'Invalid options: %s' % text


def validate_opts(kind, opts):
    """(clean_opts, warnings): the JSON schema of `kind`, then the options model's rules.

    The schema is what an older hub may not have enforced; options.validate gives the
    clearer message when both object.
    """
    if opts is None:
        opts = {}
    # The options model first: linear and bounded (the schema is slow on huge input).
    result = options_model.validate(kind, opts)
    validator = jsonschema.Draft7Validator(options_model.json_schema(kind))
    subject = options_model.schema_subject(opts)
    try:
        errors = sorted(validator.iter_errors(subject), key=lambda e: list(e.absolute_path))
    except (TypeError, ValueError, RecursionError) as exc:
        raise OptionError('Invalid opts: %s' % exc)
    if errors:
        raise OptionError(_schema_message(errors[0]))
    return result


def _kind(opts):
    return options_model.kind_of(opts)


# ------------------------------------------------------------------ task facts

def task_facts(session, task_id):
    """(owner_id, owner_name, channel_name) of the task, for policies and backends."""
    task = session.getTaskInfo(task_id)
    if not task:
        raise BuildCheckError('Task %s does not exist on the hub' % (task_id,))
    owner_id = task.get('owner')
    user = session.getUser(owner_id) if owner_id is not None else None
    if not user:
        raise BuildCheckError('Owner %s of task %s does not exist' % (owner_id, task_id))
    channel = None
    if task.get('channel_id') is not None:
        info = session.getChannel(task['channel_id'])
        channel = info['name'] if info else None
    return owner_id, user['name'], channel


def _event(session, event):
    """The event id every lookup uses: the caller's, else getLastEvent() (as kojid's own
    build tasks do); the plan records it as event_id so backends can record it too."""
    if event is not None:
        return event
    return session.getLastEvent()['id']


# ------------------------------------------------------------------ buildContainer

def prepare_binary(session, task_id, src, target, opts, options, workdir, event=None,
                   logger=None, fetch=source.fetch_source, timeout=None, scm_hook=None):
    """Check a buildContainer request and fetch what it needs; return a BuildPlan.

    `scm_hook(name, build_tag=, scratch=[, srcdir=])`, if given, is called with
    'preSCMCheckout' and 'postSCMCheckout' around the fetch (kojid's callbacks), with the
    build tag this plan resolved.

    Order: opts, source URL shape, target and arches at one event, allowed SCM (with the
    owner's policy data), Dockerfile labels and NVR, tag lengths, then the Koji state a
    non-scratch build needs (package listed, NVR free).
    """
    kind = _kind(opts)
    clean, warnings = validate_opts(kind, opts)
    scmurl.check_source_url(src)
    scratch = bool(clean.get('scratch'))
    isolated = bool(clean.get('isolated'))
    flatpak = kind == options_model.FLATPAK
    event = _event(session, event)
    owner_id, owner, channel = task_facts(session, task_id)
    target_info = checks.resolve_target(session, target, event=event)
    arches = checks.build_arches(session, target_info['build_config'],
                                 clean.get('arch_override'), scratch, isolated,
                                 event=event, logger=logger)
    policy_data = {'user_id': owner_id, 'channel': channel, 'scratch': scratch}
    kwargs = {'session': session, 'policy_data': policy_data, 'logger': logger,
              'flatpak': flatpak, 'git_branch': clean.get('git_branch')}
    if timeout is not None:
        kwargs['timeout'] = timeout
    if scm_hook is not None:
        # kojid's order: the allowed-SCM check, then preSCMCheckout, then the checkout
        source.assert_scm_allowed(source.make_scm(src, options), options, session=session,
                                  policy_data=policy_data)
        scm_hook('preSCMCheckout', build_tag=target_info['build_config'], scratch=scratch)
    checkout = fetch(src, workdir, options, **kwargs)
    if scm_hook is not None:
        scm_hook('postSCMCheckout', build_tag=target_info['build_config'], scratch=scratch,
                 srcdir=checkout.srcdir)
    labels = source.read_labels(checkout.dockerfile_path) if checkout.dockerfile_path else {}
    container_yaml = source.read_container_yaml(checkout.srcdir)
    identity = source.image_identity(labels, release_override=clean.get('release'),
                                     flatpak=flatpak, container_yaml=container_yaml)
    tags = source.read_additional_tags(checkout.srcdir, container_yaml=container_yaml)
    source.check_tag_lengths(identity.version, identity.release, tags)
    valid_tags, invalid_tags = source.split_valid_tags(tags)
    if invalid_tags:
        warnings.append('Ignoring invalid additional tags (allowed: letters, digits, "_" and '
                        '"."): %s' % ', '.join(repr(t) for t in invalid_tags[:10]))
    dest_tag = target_info['dest_tag_name']
    if not scratch:
        if not identity.component:
            # Only flatpaks get here: their labels are optional (source.image_identity).
            raise BuildCheckError(
                'Flatpak build: cannot tell the component, which a non-scratch build needs '
                'for the package list check of %s; set "flatpak: {component: ...}" or '
                '"compose: {modules: [name:stream]}" in container.yaml, or a '
                '"com.redhat.component" label' % dest_tag)
        checks.check_package_allowed(session, dest_tag, identity.component, event=event)
        if identity.nvr:
            checks.check_nvr_free(session, identity.nvr)
    if logger is not None:
        for warning in warnings:
            logger.warning('%s', warning)
    return BuildPlan(
        task_id=task_id, kind=kind, src=src, opts=clean, warnings=warnings, event=event,
        event_id=event, target=target_info, target_name=target_info['name'],
        build_tag=target_info['build_tag_name'], dest_tag=dest_tag, arches=arches,
        scratch=scratch, isolated=isolated, flatpak=flatpak,
        git_branch=clean.get('git_branch'), checkout=checkout, labels=labels,
        container_yaml=container_yaml, identity=identity, additional_tags=valid_tags,
        owner=owner, owner_id=owner_id, channel=channel)


# ------------------------------------------------------------------ buildSourceContainer

def _lookup_build(session, build_id, build_nvr):
    by_id = by_nvr = None
    if build_id is not None:
        by_id = session.getBuild(build_id)
        if not by_id:
            raise BuildCheckError('No build with id %s' % build_id)
    if build_nvr is not None:
        by_nvr = session.getBuild(build_nvr)
        if not by_nvr:
            raise BuildCheckError('No build %s' % build_nvr)
    if by_id and by_nvr and by_id['id'] != by_nvr['id']:
        raise OptionError('koji_build_id %s is build %s, not koji_build_nvr %s'
                          % (build_id, by_id.get('nvr'), build_nvr))
    return by_id or by_nvr


def _image_extra(session, build):
    extra = build.get('extra') or {}
    if not isinstance(extra, dict):
        extra = {}
    image = extra.get('image')
    if image is None and isinstance(extra.get('typeinfo'), dict):
        image = extra['typeinfo'].get('image')
    if image is None:
        btypes = session.getBuildType(build['id']) or {}
        if 'image' in btypes:
            image = {}
    return image


def check_source_package(session, dest_tag, component, build, owner, event=None):
    """The source container is its own Koji package, `<image name>-source`: unlisted in
    the destination tag, the import at the very end would fail after the whole OSBS run,
    so say it now, with the admin's command."""
    config = session.getPackageConfig(dest_tag, component, event=event)
    if not config:
        raise BuildCheckError(
            'Package %s is not in the package list of tag %s. A source container build of '
            '%s is imported as its own package, %s (the image\'s name + "-source"): ask a '
            'Koji admin to add it before building: koji add-pkg --owner %s %s %s'
            % (component, dest_tag, build.get('nvr'), component, owner, dest_tag, component))
    return checks.check_package_allowed(session, dest_tag, component, event=event)


def prepare_source(session, task_id, target, opts, options, workdir, event=None,
                   logger=None):
    """Check a buildSourceContainer request; return a SourcePlan.

    The image build is looked up by koji_build_id and/or koji_build_nvr (both must name
    the same build), must be a COMPLETE image build and not itself a source container;
    the source container's component is `<name>-source`.
    """
    clean, warnings = validate_opts(options_model.SOURCE, opts)
    scratch = bool(clean.get('scratch'))
    event = _event(session, event)
    owner_id, owner, channel = task_facts(session, task_id)
    target_info = checks.resolve_target(session, target, event=event)
    build = _lookup_build(session, clean.get('koji_build_id'), clean.get('koji_build_nvr'))
    image = _image_extra(session, build)
    if image is None:
        raise BuildCheckError('Build %s is not a container image build' % build.get('nvr'))
    if isinstance(image, dict) and image.get('sources_for_nvr'):
        raise BuildCheckError('Build %s is itself a source container build (of %s)'
                              % (build.get('nvr'), image.get('sources_for_nvr')))
    if build.get('state') != koji.BUILD_STATES['COMPLETE']:
        raise BuildCheckError('Build %s is not complete (state %s)' % (
            build.get('nvr'), koji.BUILD_STATES.get(build.get('state'), build.get('state'))))
    component = '%s-source' % build['name']
    dest_tag = target_info['dest_tag_name']
    if not scratch:
        check_source_package(session, dest_tag, component, build, owner, event=event)
    if logger is not None:
        for warning in warnings:
            logger.warning('%s', warning)
    return SourcePlan(
        task_id=task_id, kind=options_model.SOURCE, opts=clean, warnings=warnings,
        event=event, event_id=event, target=target_info, target_name=target_info['name'],
        dest_tag=dest_tag, scratch=scratch, build=build, build_id=build['id'],
        build_nvr=build['nvr'], component=component,
        signing_intent=clean.get('signing_intent'), owner=owner, owner_id=owner_id,
        channel=channel, workdir=workdir)
