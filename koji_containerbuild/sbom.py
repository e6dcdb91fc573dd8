"""SPDX 2.3 JSON SBOM of one per-arch image (pure: facts in, bytes out).

The image is the described package (purl `pkg:oci/<name>@sha256%3A<hex>` with the
repository URL), every RPM of its rpmdb is a package it CONTAINS, and the parent
images are packages too: the final stage's base is the image's DESCENDANT_OF target,
earlier stages are BUILD_DEPENDENCY_OF it. Output is deterministic: packages and
relationships in a fixed order, ids derived from content, the document namespace
from the image digest, the creation time from the build's own finish time.

`image` (see supply_chain.image_facts): {name (repository), registry (host or None),
version (version-release), nvr, arch, goarch, manifest_digest, config_digest,
finished (epoch seconds)}. `rpms`: content-generator RPM components, plus `license`.
`parents`: [{from, registry, repository, tag, digest, final, koji_build {id, nvr}|None}].
"""

import json
import re
import time
from urllib.parse import quote

from koji_containerbuild.spdx_license import spdx_expression

SPDX_VERSION = 'SPDX-2.3'
MEDIA_TYPE = 'application/spdx+json'
_ID_RE = re.compile(r'[^A-Za-z0-9.-]+')
_NOASSERTION = 'NOASSERTION'


def iso_time(epoch):
    """RFC 3339 UTC, whole seconds (what SPDX and SLSA expect)."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(int(epoch)))


def _enc(text):
    return quote(str(text), safe='.-_~')


def _qualifiers(pairs):
    """purl qualifiers: sorted keys, empty values dropped, values percent-encoded."""
    items = sorted((k, v) for k, v in pairs.items() if v not in (None, ''))
    if not items:
        return ''
    return '?' + '&'.join('%s=%s' % (k, quote(str(v), safe='.-_~/:')) for k, v in items)


def oci_purl(repository, digest=None, registry=None, arch=None, tag=None):
    """pkg:oci/<last repository part>@<digest>?arch=&repository_url=<registry>/<repo>&tag="""
    name = repository.rsplit('/', 1)[-1].lower()
    version = '@' + _enc(digest) if digest else ''
    repo_url = '%s/%s' % (registry, repository) if registry else None
    return 'pkg:oci/%s%s%s' % (_enc(name), version, _qualifiers(
        {'arch': arch, 'repository_url': repo_url, 'tag': tag}))


def rpm_purl(comp):
    """pkg:rpm/<name>@<version>-<release>?arch=<arch>&epoch=<epoch>"""
    return 'pkg:rpm/%s@%s%s' % (_enc(comp['name']), _enc('%s-%s' % (comp['version'],
                                                                      comp['release'])),
                                _qualifiers({'arch': comp.get('arch'),
                                             'epoch': comp.get('epoch')}))


def _spdx_id(kind, text, used):
    """A unique SPDX id from `text`; `used` counts each base (linear in the packages)."""
    base = 'SPDXRef-%s-%s' % (kind, _ID_RE.sub('-', text).strip('-') or 'x')
    ident = base
    while ident in used:
        used[base] += 1
        ident = '%s-%d' % (base, used[base])
    used[ident] = 1
    used.setdefault(base, 1)
    return ident


def _purl_ref(purl):
    return {'referenceCategory': 'PACKAGE-MANAGER', 'referenceType': 'purl',
            'referenceLocator': purl}


def _package(spdx_id, name, version, purl, purpose, checksums=(), license_declared=None,
             comment=None, source_info=None):
    pkg = {
        'SPDXID': spdx_id,
        'name': name,
        'downloadLocation': _NOASSERTION,
        'filesAnalyzed': False,
        'licenseConcluded': _NOASSERTION,
        'licenseDeclared': license_declared or _NOASSERTION,
        'copyrightText': _NOASSERTION,
        'externalRefs': [_purl_ref(purl)],
    }
    if purpose:
        pkg['primaryPackagePurpose'] = purpose
    if version:
        pkg['versionInfo'] = version
    if checksums:
        pkg['checksums'] = list(checksums)
    if comment:
        pkg['comment'] = comment
    if source_info:
        pkg['sourceInfo'] = source_info
    return pkg


def document_namespace(image):
    where = '%s/%s' % (image['registry'], image['name']) if image.get('registry') \
        else image['name']
    return 'urn:koji-containerbuild:spdx:%s@%s' % (where, image['manifest_digest'])


def document(image, rpms, parents, tool_version):
    """The SPDX 2.3 document as a dict."""
    used = {'SPDXRef-DOCUMENT': 1}
    image_id = _spdx_id('image', image['arch'], used)
    image_pkg = _package(
        image_id, image['name'], image['version'],
        oci_purl(image['name'], image['manifest_digest'], image.get('registry'),
                 image.get('goarch')),
        'CONTAINER',
        checksums=[{'algorithm': 'SHA256',
                    'checksumValue': image['manifest_digest'].split(':', 1)[1]}],
        comment='%s, %s image; config %s' % (image['nvr'], image['arch'],
                                              image['config_digest']))
    image_pkg['builtDate'] = iso_time(image['finished'])
    packages = [image_pkg]
    relationships = [{'spdxElementId': 'SPDXRef-DOCUMENT', 'relationshipType': 'DESCRIBES',
                      'relatedSpdxElement': image_id}]
    for parent in parents:
        packages.append(_parent_package(parent, image, used))
        pid = packages[-1]['SPDXID']
        if parent['final']:
            relationships.append({'spdxElementId': image_id,
                                  'relationshipType': 'DESCENDANT_OF',
                                  'relatedSpdxElement': pid})
        else:
            relationships.append({'spdxElementId': pid,
                                  'relationshipType': 'BUILD_DEPENDENCY_OF',
                                  'relatedSpdxElement': image_id})
    extracted = {}
    for comp in sorted(rpms, key=_rpm_key):
        expression, text = spdx_expression(comp.get('license'))
        if text is not None:
            extracted[expression] = text
        evr = '%s-%s' % (comp['version'], comp['release'])
        if comp.get('epoch') is not None:
            evr = '%s:%s' % (comp['epoch'], evr)
        rid = _spdx_id('rpm', '%s-%s-%s.%s' % (comp['name'], comp['version'],
                                               comp['release'], comp['arch']), used)
        checksums = []
        if comp.get('sigmd5'):
            # the MD5 of the RPM's header + payload (Koji's payloadhash)
            checksums.append({'algorithm': 'MD5', 'checksumValue': comp['sigmd5']})
        comment = None
        if comp.get('signature'):
            comment = 'RPM signed with key ID %s' % comp['signature']
        packages.append(_package(rid, comp['name'], evr, rpm_purl(comp), None, checksums=checksums,
                                 license_declared=expression, comment=comment))
        relationships.append({'spdxElementId': image_id, 'relationshipType': 'CONTAINS',
                              'relatedSpdxElement': rid})
    doc = {
        'spdxVersion': SPDX_VERSION,
        'dataLicense': 'CC0-1.0',
        'SPDXID': 'SPDXRef-DOCUMENT',
        'name': '%s.%s' % (image['nvr'], image['arch']),
        'documentNamespace': document_namespace(image),
        'creationInfo': {
            'created': iso_time(image['finished']),
            'creators': ['Tool: koji-containerbuild-%s' % tool_version],
        },
        'packages': packages,
        'relationships': relationships,
    }
    if extracted:
        doc['hasExtractedLicensingInfos'] = [
            {'licenseId': ref, 'extractedText': text,
             'comment': 'RPM License header value (not an SPDX expression)'}
            for ref, text in sorted(extracted.items())]
    return doc


def _rpm_key(comp):
    return (comp['name'], comp['version'], comp['release'], comp.get('arch') or '',
            comp.get('epoch') if comp.get('epoch') is not None else -1)


def _parent_package(parent, image, used):
    koji_build = parent.get('koji_build')
    name = parent['repository'] or parent['from']
    pid = _spdx_id('parent', name, used)
    version = None
    if koji_build:
        version = '-'.join(koji_build['nvr'].rsplit('-', 2)[1:])
    elif parent.get('tag'):
        version = parent['tag']
    checksums = []
    if parent.get('digest'):
        checksums.append({'algorithm': 'SHA256',
                          'checksumValue': parent['digest'].split(':', 1)[1]})
    source_info = None
    if koji_build:
        source_info = 'Koji build %s (build id %s)' % (koji_build['nvr'], koji_build['id'])
    role = 'an earlier build stage'
    if parent['final']:
        role = 'base of the final stage'
        if parent.get('config_digest'):
            role += ', config %s' % parent['config_digest']
    return _package(
        pid, name, version,
        oci_purl(name, parent.get('digest'), parent.get('registry'), image.get('goarch'),
                 None if parent.get('digest') else parent.get('tag')),
        'CONTAINER', checksums=checksums, source_info=source_info,
        comment='FROM %s (%s)' % (parent['from'], role))


def dumps(doc):
    """Deterministic bytes of a document (sorted keys, fixed separators, trailing newline)."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')
