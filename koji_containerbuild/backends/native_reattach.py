"""Native backend re-run: attach again the SBOM and provenance an imported build lacks.

kojid killed after CGImport but before the attachments were pushed: Koji has the
documents (the build's `image` archives named in extra.image.supply_chain), the registry
lacks some `sha256-<hex>.sbom` / `.att` tags. The re-run (native_rerun.finish) pushes
them again, byte-identical to the first run's:
- the documents are downloaded from kojid's `topurl` in Koji's layout
  (PathInfo.typedir(build, 'image'), as koji.openRemoteFile builds the URL), bounded in
  size and time, and checked against the sha256 and size of the build's archives;
- the subject (per-arch manifest digest, media type, size) comes from the build's
  manifest list, the entry whose digest the attachment tag names;
- the `created` annotation is the SBOM's creationInfo.created, as in the first run.
So the artifact manifests equal the first run's and their PUTs are idempotent; an arch
missing either tag gets both pushed again (the SBOM is needed for `created` anyway).
Nothing missing (or an older build naming no documents): nothing is downloaded.
"""

import hashlib
import json
import re
from urllib.parse import quote, urlsplit

import koji
import requests
import urllib3.exceptions

from koji_containerbuild import http_deadline, supply_chain
from koji_containerbuild.backends.native_common import short
from koji_containerbuild.errors import BackendError
from koji_containerbuild.registry import MAX_BLOB, parse_json
from koji_containerbuild.scmurl import redact

MAX_DOCUMENT = MAX_BLOB         # 64 MiB: the largest blob the registry client handles
TIMEOUT = 60                    # seconds per socket operation of a download
DEADLINE = 300                  # seconds for one whole document download
MAX_REASON = 1000               # characters of the underlying error in the fault
_ARCH_RE = re.compile(r'^[A-Za-z0-9_]{1,16}\Z')
_TAG_RE = re.compile(r'^sha256-([0-9a-f]{64})\.(sbom|att)\Z')


class _KojiDeadline(http_deadline.Deadline):
    def message(self):
        return ('Koji files at %s: %s gave no complete answer within %g s (deadline)'
                % (self.label, self.what, self.seconds))


def reattach(handler, build, registry, repository, list_data, fence, delays=None):
    """Attach the documents of the imported `build` whose tags `repository` lacks.

    list_data: the bytes of the build's manifest list. Returns the pushed tags ([] when
    nothing was missing). A failure is a BackendError naming the build, what is missing
    and how to finish by hand, raised before the re-run tags the build (as the first
    run fails before its tagBuild when attaching fails).
    """
    named = named_documents(build)
    missing = [e['registry_tag'] for _arch, _kind, e in named
               if not _present(registry, repository, e['registry_tag'])]
    if not missing:
        return []
    try:
        arches = sorted(set(arch for arch, _kind, e in named
                            if e['registry_tag'] in missing))
        docs = documents(handler, build, list_data, arches,
                         [n for n in named if n[0] in arches])
        fence.check('attach SBOM and provenance')
        if delays is None:
            # imported late: native_parent imports this module (through native_rerun)
            from koji_containerbuild.backends.native_parent import PUBLISH_RETRY_DELAYS
            delays = PUBLISH_RETRY_DELAYS
        supply_chain.attach_with_retries(registry, repository, docs, handler.logger.info,
                                         delays)
    except BackendError as exc:
        raise BackendError(
            '%s was imported as build %s but its SBOM and provenance were not attached in '
            'the registry: %s. Missing: %s. To finish by hand: push each document (in Koji '
            'with the build) as an OCI artifact whose subject is its image manifest under '
            'those tags in %s, then tag the build (koji tag-build) and push its floating '
            'tags'
            % (build['nvr'], build['id'], str(exc)[:MAX_REASON], ', '.join(missing),
               '%s/%s' % (registry.host, repository)))
    handler.logger.info('re-run: attached %s', ', '.join(missing))
    return missing


def named_documents(build):
    """[(arch, kind, {filename, media_type, registry_tag})] of extra.image.supply_chain,
    sorted; [] for a build that names none. A malformed entry is a BackendError."""
    supply = ((build.get('extra') or {}).get('image') or {}).get('supply_chain')
    if not supply:
        return []
    bad = BackendError('Build %s (id %s) has a malformed extra.image.supply_chain: attach '
                       'its SBOM and provenance by hand' % (build['nvr'], build['id']))
    if not isinstance(supply, dict):
        raise bad
    out = []
    for arch in sorted(supply, key=str):
        kinds = supply[arch]
        if not isinstance(arch, str) or not _ARCH_RE.match(arch) \
                or not isinstance(kinds, dict):
            raise bad
        image = set()
        for kind in supply_chain.KINDS:
            entry = kinds.get(kind)
            if not isinstance(entry, dict) \
                    or entry.get('filename') != supply_chain.filename(kind, arch):
                raise bad
            match = _TAG_RE.match(entry.get('registry_tag') or '') \
                if isinstance(entry.get('registry_tag'), str) else None
            if not match or match.group(2) != supply_chain.TAG_SUFFIX[kind]:
                raise bad
            image.add(match.group(1))
            out.append((arch, kind, entry))
        if len(image) != 1:             # both documents describe one image
            raise bad
    return out


def _present(registry, repository, tag):
    try:
        registry.tag_digest(repository, tag)
        return True
    except BackendError:
        return False        # not there (a registry error: pushing again is harmless)


def documents(handler, build, list_data, arches, named):
    """The docs structure supply_chain.attach() takes, for `arches`, from Koji."""
    images = _list_entries(build, list_data)
    archives = dict((a.get('filename'), a) for a in
                    handler.session.listArchives(buildID=build['id'], type='image') or [])
    topurl = getattr(handler.options, 'topurl', None)
    if not isinstance(topurl, str) or not topurl:
        raise BackendError('kojid has no topurl to download the documents from')
    base = koji.PathInfo(topdir=topurl.rstrip('/')).typedir(build, 'image')
    docs = []
    for arch in arches:
        files = {}
        digest = None
        for _arch, kind, entry in [n for n in named if n[0] == arch]:
            name = entry['filename']
            files[kind] = (name, _download(build, base + '/' + quote(name),
                                           archives.get(name), name))
            digest = 'sha256:' + _TAG_RE.match(entry['registry_tag']).group(1)
        image = images.get(digest)
        if image is None:
            raise BackendError('the manifest list of %s has no image %s (named by the tags '
                               'of %s)' % (build['nvr'], digest, arch))
        docs.append({'arch': arch, 'created': _created(files['sbom']), 'image': image,
                     'files': files})
    return docs


def _list_entries(build, list_data):
    """{digest: {digest, media_type, size}} of the manifest list's entries."""
    body = parse_json(list_data, 'manifest list of %s' % build['nvr'], dict)
    images = {}
    for entry in body.get('manifests') or []:
        if not isinstance(entry, dict):
            continue
        digest, media, size = entry.get('digest'), entry.get('mediaType'), entry.get('size')
        if isinstance(digest, str) and isinstance(media, str) and isinstance(size, int) \
                and not isinstance(size, bool):
            images[digest] = {'digest': digest, 'media_type': media, 'size': size}
    return images


def _download(build, url, archive, name):
    """The bytes of Koji's file `name` at `url`, checked against its archive record."""
    shown = redact(url)
    if not archive:
        raise BackendError('build %s has no archive %s in Koji' % (build['nvr'], name))
    size, checksum = archive.get('size'), archive.get('checksum')
    if archive.get('checksum_type') not in (koji.CHECKSUM_TYPES['sha256'], 'sha256') \
            or not isinstance(size, int) or not isinstance(checksum, str):
        raise BackendError('Koji archive %s of %s has no sha256 checksum to check it by'
                           % (name, build['nvr']))
    if size > MAX_DOCUMENT:
        raise BackendError('Koji archive %s of %s is %d bytes, over the %d bytes a document '
                           'may have' % (name, build['nvr'], size, MAX_DOCUMENT))
    host = urlsplit(url).hostname or '?'
    chunks = []
    total = 0
    try:
        with _KojiDeadline(host, 'GET %s' % name, DEADLINE), \
                http_deadline.session() as session:
            with session.get(url, stream=True, timeout=TIMEOUT) as resp:
                if resp.status_code != 200:
                    raise BackendError('GET %s gave HTTP %s' % (shown, resp.status_code))
                for chunk in resp.iter_content(65536):
                    total += len(chunk)
                    if total > size:
                        break           # longer than Koji's record: the checksum differs
                    chunks.append(chunk)
                    http_deadline.raise_if_expired()
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            OSError) as exc:
        http_deadline.raise_if_expired()
        raise BackendError('cannot download %s from %s: %s' % (name, shown, short(exc)))
    data = b''.join(chunks)
    got = hashlib.sha256(data).hexdigest()
    if total != size or got != checksum:
        raise BackendError('%s from %s does not match Koji\'s archive record (%s bytes, '
                           'sha256 %s; expected %d bytes, sha256 %s)'
                           % (name, shown, total if total <= size else 'more than %d' % size,
                              got if total <= size else '-', size, checksum))
    return data


def _created(sbom_file):
    """creationInfo.created of the SBOM (the first run's `created` annotation)."""
    name, data = sbom_file
    try:
        created = json.loads(data)['creationInfo']['created']
    except (ValueError, RecursionError, TypeError, KeyError):
        created = None
    if not isinstance(created, str) or len(created) > 64:
        raise BackendError('%s has no creationInfo.created' % name)
    return created
