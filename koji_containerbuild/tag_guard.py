"""Which registry tags a native build may move: one component cannot move another
component's images.

The native backend derives the repository from the `name` label, which any packager
writes. Rules (docs/security.md), checked before the first PUT of a build and again
right before each publish step:

- the NVR tag (`version-release`, the build's primary tag) is never overwritten when it
  holds another digest: an NVR names one build; nor is any tag that is the NVR tag of
  the image it holds (its `version`-`release` labels), e.g. an older build's NVR tag
  named as an additional tag;
- a floating tag (`latest`, the version, additional tags) or a unique tag is moved only
  when the image it points at now carries this build's component in its config's
  `com.redhat.component` label;
- with `[native] repository_binding = component` a site binds each repository to one
  component by name: the repository's last path segment must be the component, or the
  component without its `-container` suffix.

- a repository that already holds images of another component (the component of its
  `latest` image, else of its first listed tag that is not an attachment) takes no images of this one: first
  come, first served, so nobody can squat a tag (say, the next version) that the
  repository's owner will need.

A violation fails the build before anything is published, naming every tag and owner.
"""

import re

from koji_containerbuild.errors import BackendError, OptionError

COMPONENT_LABEL = 'com.redhat.component'
# Artifacts attached to an image digest (supply_chain's SBOM/provenance, cosign-style
# signatures) are not images of any component: they never decide who owns a repository.
ATTACHMENT_TAG = re.compile(r'sha256-[0-9a-f]{64}\.(?:sbom|att|sig)\Z')
OWNER_SAMPLE = 50     # tags read to find the first one that is an image


class TagRefused(BackendError):
    """This build may not move these tags (not a transient registry error)."""
BINDINGS = ('none', 'component')
STAGES = ('unique', 'primary', 'floating')


def check_binding(repository, component, binding):
    """OptionError unless `repository` may hold images of `component` under `binding`."""
    if binding in (None, '', 'none'):
        return
    last = repository.rsplit('/', 1)[-1]
    allowed = set([component])
    if component.endswith('-container'):
        allowed.add(component[:-len('-container')])
    if last not in allowed:
        raise OptionError(
            'Repository %s is not bound to component %s: with [native] repository_binding '
            '= component the last part of the name label must be %s'
            % (repository, component, ' or '.join(repr(a) for a in sorted(allowed))))


def repository_owner_problem(registry, repository, component):
    """Why `repository` takes no images of `component` (None if it may): it already
    holds images of another component, the component of its `latest` image, else of its
    first listed tag. First come, first served: a component cannot squat tags (say the
    next version) in a repository another component uses."""
    found = registry.get_manifest(repository, 'latest', missing_ok=True)
    tag = 'latest' if found is not None else next(
        (t for t in registry.first_tags(repository, OWNER_SAMPLE)
         if not ATTACHMENT_TAG.match(t)), None)
    if tag is None:
        return None
    try:
        # by digest: the labels are read once, whichever tags point at the image
        ref = found[2] if found is not None else tag
        owner = registry.image_labels(repository, ref).get(COMPONENT_LABEL)
    except BackendError as exc:
        return 'the owner of its tag %s cannot be read (%s)' % (tag, exc)
    if owner != component:
        return 'the repository holds images of %s (tag %s)' % (
            'component %s' % owner if owner else 'no component', tag)
    return None


def check_tags(registry, repository, tags, component, list_digest=None, arch_tags=()):
    """BackendError naming every tag of `tags` ({'unique', 'primary', 'floating'}) and
    `arch_tags` this build of `component` may not move; `list_digest` is what the build
    publishes (a tag already serving it is fine). Without `list_digest` (the check before
    building) an NVR tag already holding this component's image of that NVR passes, and
    the check at publish time decides by digest."""
    problems = []
    owner_problem = repository_owner_problem(registry, repository, component)
    if owner_problem:
        problems.append(owner_problem)
    seen = set()
    planned = [(stage, tag) for stage in STAGES for tag in tags.get(stage) or []]
    planned += [('unique', tag) for tag in arch_tags]
    for stage, tag in planned:
        if tag in seen:
            continue
        seen.add(tag)
        found = registry.get_manifest(repository, tag, missing_ok=True)
        if found is None or found[2] == list_digest:
            continue
        if stage == 'primary' and list_digest is not None:
            problems.append('%s (the NVR tag) already holds %s' % (tag, found[2]))
            continue
        try:
            labels = registry.image_labels(repository, found[2])
        except BackendError as exc:
            problems.append('%s holds an image whose owner cannot be read (%s)' % (tag, exc))
            continue
        owner = labels.get(COMPONENT_LABEL)
        if stage == 'primary':
            # before the build (no digest yet): only this NVR's own image may hold it
            # (a re-run of the same build); the publish step then requires the digest
            if owner != component or tag != '%s-%s' % (labels.get('version'),
                                                       labels.get('release')):
                problems.append('%s (the NVR tag) already holds %s, an image of %s'
                                % (tag, found[2], owner or 'no component'))
            continue
        if tag == '%s-%s' % (labels.get('version'), labels.get('release')):
            # another build's NVR tag, named here as an additional tag
            problems.append('%s is the NVR tag of %s-%s' % (tag, owner or 'another build',
                                                            tag))
            continue
        if owner != component:
            problems.append('%s holds an image of %s' % (
                tag, 'component %s' % owner if owner else 'no component (no %s label)'
                % COMPONENT_LABEL))
    if problems:
        raise TagRefused('Refusing to publish %s of component %s: %s. A build may only '
                           'move tags of its own component; the NVR tag is never moved '
                           '(see docs/security.md)'
                           % ('%s/%s' % (registry.host, repository), component,
                              '; '.join(problems[:10])))
