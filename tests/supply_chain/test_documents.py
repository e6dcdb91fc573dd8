"""SBOM and provenance content from ArchResult facts, checked by the maintained validators."""

import hashlib
import json

import pytest

from koji_containerbuild import sbom, spdx_license, supply_chain
from tests.supply_chain.facts import BUILD, D, IDENTITY, PARENT, PARENT_BUILDS, arch_result
from tests.supply_chain.validators import (assert_valid, provenance_problems,
                                           spdx_problems)


def docs(result=None, **kwargs):
    return supply_chain.documents([result or arch_result()], IDENTITY, BUILD,
                                  parent_image_builds=PARENT_BUILDS, **kwargs)


def test_documents_validate_and_describe_the_image():
    doc, = docs()
    assert_valid(doc['files'])
    assert doc['files']['sbom'][0] == 'sbom-x86_64.spdx.json'
    assert doc['files']['provenance'][0] == 'provenance-x86_64.intoto.json'
    spdx = json.loads(doc['files']['sbom'][1])
    assert spdx['spdxVersion'] == 'SPDX-2.3'
    assert spdx['documentNamespace'] == \
        'urn:koji-containerbuild:spdx:127.0.0.1:5000/acme/app@' + D
    assert spdx['creationInfo']['created'] == '2024-05-01T09:49:50Z'
    image = spdx['packages'][0]
    assert image['primaryPackagePurpose'] == 'CONTAINER'
    assert image['externalRefs'][0]['referenceLocator'] == (
        'pkg:oci/app@sha256%3A' + '1' * 64 +
        '?arch=amd64&repository_url=127.0.0.1:5000/acme/app')
    assert {'spdxElementId': 'SPDXRef-DOCUMENT', 'relationshipType': 'DESCRIBES',
            'relatedSpdxElement': image['SPDXID']} in spdx['relationships']
    contains = [r['relatedSpdxElement'] for r in spdx['relationships']
                if r['relationshipType'] == 'CONTAINS']
    assert len(contains) == 3


def test_rpm_packages_carry_nevra_license_sigmd5_and_key():
    result = arch_result(n=8)
    spdx = json.loads(docs(result)[0]['files']['sbom'][1])
    by_name = dict((p['name'], p) for p in spdx['packages'])
    pkg = by_name['pkg0001']
    assert pkg['versionInfo'] == '1:1.1-1.fc40'
    assert pkg['externalRefs'][0]['referenceLocator'] == \
        'pkg:rpm/pkg0001@1.1-1.fc40?arch=x86_64&epoch=1'
    assert pkg['checksums'] == [{'algorithm': 'MD5', 'checksumValue': '%032x' % 7919}]
    assert pkg['comment'] == 'RPM signed with key ID 199e2f91fd431d51'
    assert pkg['licenseDeclared'] == 'GPL-2.0-or-later AND LGPL-2.1-or-later'
    assert 'comment' not in by_name['pkg0000']          # unsigned
    assert by_name['pkg0000']['externalRefs'][0]['referenceLocator'] == \
        'pkg:rpm/pkg0000@1.0-0.fc40?arch=noarch'          # no epoch
    # an old-style license becomes a LicenseRef with the header text kept
    old = by_name['pkg0002']['licenseDeclared']
    assert old.startswith('LicenseRef-rpm-GPLv2-and-LGPLv2')
    extracted = dict((e['licenseId'], e['extractedText'])
                     for e in spdx['hasExtractedLicensingInfos'])
    assert extracted[old] == 'GPLv2+ and LGPLv2+'
    assert by_name['pkg0005']['licenseDeclared'] == 'NOASSERTION'
    assert spdx_problems(docs(result)[0]['files']['sbom'][1]) == []


def test_parents_are_dependencies_with_digest_and_koji_build():
    spdx = json.loads(docs()[0]['files']['sbom'][1])
    image_id = spdx['packages'][0]['SPDXID']
    parents = [p for p in spdx['packages'] if p['SPDXID'].startswith('SPDXRef-parent')]
    assert [p['name'] for p in parents] == ['golang', 'acme/base']
    golang, base = parents
    assert base['versionInfo'] == '1.0-1'
    assert base['sourceInfo'] == 'Koji build base-container-1.0-1 (build id 17)'
    assert base['checksums'] == [{'algorithm': 'SHA256', 'checksumValue': '3' * 64}]
    assert base['externalRefs'][0]['referenceLocator'].startswith(
        'pkg:oci/base@sha256%3A' + '3' * 64)
    assert 'checksums' not in golang and golang['versionInfo'] == '1.22'
    rels = [(r['spdxElementId'], r['relationshipType'], r['relatedSpdxElement'])
            for r in spdx['relationships']]
    assert (image_id, 'DESCENDANT_OF', base['SPDXID']) in rels
    assert (golang['SPDXID'], 'BUILD_DEPENDENCY_OF', image_id) in rels
    # a parent_build given by the caller (koji_parent_build) names the final stage
    spdx = json.loads(docs(parent_build={'id': 99, 'nvr': 'other-2-1'})[0]['files']['sbom'][1])
    assert [p.get('sourceInfo') for p in spdx['packages']
            if p['name'] == 'acme/base'] == ['Koji build other-2-1 (build id 99)']


def test_provenance_content():
    prov = json.loads(docs()[0]['files']['provenance'][1])
    assert prov['subject'] == [{'name': '127.0.0.1:5000/acme/app', 'digest': {'sha256': '1' * 64}}]
    pred = prov['predicate']
    definition = pred['buildDefinition']
    assert definition['externalParameters'] == {
        'source': 'git+https://git.example.com/app#' + 'c' * 40,
        'target': 'f40-container-candidate', 'arch': 'x86_64', 'dockerfile': 'Dockerfile',
        'options': {'scratch': False}}
    deps = definition['resolvedDependencies']
    assert deps[0] == {'uri': 'git+https://git.example.com/app', 'name': 'source',
                       'digest': {'gitCommit': 'c' * 40}}
    base = [d for d in deps if d['name'] == 'FROM acme/base:1.0-1'][0]
    assert base['digest'] == {'sha256': '3' * 64}
    assert base['annotations'] == {'stage': 'final', 'koji_build': 'base-container-1.0-1',
                                   'koji_build_id': 17, 'config_digest': 'sha256:' + '5' * 64}
    golang = [d for d in deps if d['name'] == 'FROM golang:1.22'][0]
    assert golang == {'name': 'FROM golang:1.22', 'uri': 'pkg:oci/golang?arch=amd64&tag=1.22',
                      'annotations': {'stage': 'build'}}
    repo = [d for d in deps if d['name'] == 'koji-repo'][0]
    assert repo['annotations'] == {'build_tag': 'f40-build', 'repo_id': 77}
    assert repo['uri'].endswith('/repos/f40-build/77/x86_64/')
    assert deps[-1] == {'name': 'yum_repourls[0]', 'uri': 'https://repos.example.com/extra.repo',
                        'digest': {'sha256': 'ab' * 32}}
    run = pred['runDetails']
    assert run['builder'] == {'id': 'https://koji.example.com/kojihub#task=4242',
                              'version': {'buildah': '1.28.2', 'koji-containerbuild': '2.0.0'}}
    assert run['metadata'] == {'invocationId': 'https://koji.example.com/kojihub#task=4243',
                               'startedOn': '2024-05-01T09:30:12Z',
                               'finishedOn': '2024-05-01T09:49:50Z'}
    assert provenance_problems(docs()[0]['files']['provenance'][1]) == []


def test_byte_identical_for_the_same_inputs_and_different_otherwise():
    one = supply_chain.files(docs())
    two = supply_chain.files(docs(arch_result()))
    assert one == two
    changed = arch_result()
    changed['manifest_digest'] = 'sha256:' + '9' * 64
    other = supply_chain.files(docs(changed))
    assert other[0][1] != one[0][1] and other[1][1] != one[1][1]
    # RPM order in the rpmdb does not matter
    shuffled = arch_result()
    shuffled['components'].reverse()
    assert supply_chain.files(docs(shuffled)) == one


def test_scratch_image_without_registry_and_rpms():
    result = arch_result(n=0, registry=None)
    result.update(parent_images=['scratch'], parent_pinned={}, parent_pullspecs={},
                  parent_id=None, registry=None, supply_chain={})
    doc, = supply_chain.documents([result], IDENTITY, dict(BUILD, builder_id='local',
                                                           hub=None, commit=None))
    assert_valid(doc['files'])
    spdx = json.loads(doc['files']['sbom'][1])
    assert [p['name'] for p in spdx['packages']] == ['acme/app']
    assert spdx['packages'][0]['externalRefs'][0]['referenceLocator'] == \
        'pkg:oci/app@sha256%3A' + '1' * 64 + '?arch=amd64'
    prov = json.loads(doc['files']['provenance'][1])
    assert prov['predicate']['runDetails']['builder']['id'] == 'local'
    assert 'invocationId' not in prov['predicate']['runDetails']['metadata']


def test_every_known_license_and_exception_validates():
    """KNOWN_LICENSES must hold only identifiers of the SPDX license list."""
    result = arch_result(n=len(spdx_license.KNOWN_LICENSES))
    known = sorted(spdx_license.KNOWN_LICENSES)
    exceptions = sorted(spdx_license.KNOWN_EXCEPTIONS)
    for i, comp in enumerate(result['components']):
        text = known[i]
        if i < len(exceptions):
            text = 'GPL-2.0-or-later WITH %s' % exceptions[i]
        result['rpm_licenses'][supply_chain.rpmdb.nvra(comp)] = text
    data = docs(result)[0]['files']['sbom'][1]
    assert 'LicenseRef' not in data.decode()
    assert spdx_problems(data) == []


@pytest.mark.parametrize('value, expected', [
    ('MIT', ('MIT', None)),
    ('(MIT OR Apache-2.0)', ('(MIT OR Apache-2.0)', None)),
    ('MIT+', ('MIT+', None)),
    ('MIT and BSD', None),                 # lower-case operators: not SPDX
    ('MIT OR', None), ('(MIT', None), ('MIT)', None), ('WITH MIT', None),
    ('GPL-2.0-only WITH NotAnException', None),
    ('Foo-1.0', None), ('a' * 10000, None), ('((((' * 50 + 'MIT' + '))))' * 50, None),
    ('', ('NOASSERTION', None)), (None, ('NOASSERTION', None)),
])
def test_license_expressions(value, expected):
    got = spdx_license.spdx_expression(value)
    if expected is None:
        assert got[0].startswith('LicenseRef-rpm-') and got[1] == value.strip()[:4096]
    else:
        assert got == expected


def test_hostile_names_give_valid_ids_and_purls():
    result = arch_result(n=2)
    result['components'][0].update(name='a b/c?d#e', version='1+2', release='1%2')
    result['components'][1].update(name='a b/c?d#e', version='1+2', release='1%2',
                                   arch='x86_64')
    result['rpm_licenses'] = {}
    spdx = json.loads(docs(result)[0]['files']['sbom'][1])
    rpms = [p for p in spdx['packages'] if p['SPDXID'].startswith('SPDXRef-rpm')]
    assert len(set(p['SPDXID'] for p in rpms)) == 2
    assert rpms[0]['externalRefs'][0]['referenceLocator'].startswith(
        'pkg:rpm/a%20b%2Fc%3Fd%23e@1%2B2-1%252?')
    assert spdx_problems(docs(result)[0]['files']['sbom'][1]) == []


def test_rfc3339_times():
    assert sbom.iso_time(0) == '1970-01-01T00:00:00Z'


def test_the_validators_catch_bad_documents():
    doc, = docs()
    spdx = json.loads(doc['files']['sbom'][1])
    spdx['packages'][1]['licenseDeclared'] = 'NotAnSpdxLicense'
    spdx['relationships'].append({'spdxElementId': 'SPDXRef-nowhere',
                                  'relationshipType': 'CONTAINS',
                                  'relatedSpdxElement': 'SPDXRef-DOCUMENT'})
    problems = spdx_problems(json.dumps(spdx).encode())
    assert any('NotAnSpdxLicense' in p for p in problems)
    assert any('SPDXRef-nowhere' in p for p in problems)
    prov = json.loads(doc['files']['provenance'][1])
    del prov['predicate']['runDetails']['builder']['id']
    prov['subject'][0].pop('digest')
    prov['predicate']['runDetails']['metadata']['startedOn'] = 'yesterday'
    text = ' | '.join(provenance_problems(json.dumps(prov).encode()))
    assert "'id' is a required property" in text
    assert "'digest' is a required property" in text
    assert "'yesterday' does not match" in text


def test_colliding_names_get_distinct_ids():
    result = arch_result(n=5)
    names = ['a', 'a', 'a-2', 'a', 'a+2']
    for comp, name in zip(result['components'], names):
        comp.update(name=name, version='1', release='1', arch='noarch', epoch=None)
    spdx = json.loads(docs(result)[0]['files']['sbom'][1])
    ids = [p['SPDXID'] for p in spdx['packages']]
    assert len(ids) == len(set(ids)) == 8          # image, 2 parents, 5 RPMs
    assert spdx_problems(docs(result)[0]['files']['sbom'][1]) == []


def test_local_documents_keep_credentials_out(tmp_path):
    repo = tmp_path / 'extra.repo'
    repo.write_bytes(b'[x]\nbaseurl=http://example.com/\n')
    url = 'https://user:s3cret@repos.example.com/extra.repo'
    result = arch_result()
    del result['supply_chain']
    doc, = supply_chain.local_documents(
        [result], IDENTITY, 'git+https://user:s3cret@git.example.com/app#' + 'c' * 40,
        'c' * 40, 'local', {'yum_repourls': [url], 'scratch': True}, [url], [str(repo)])
    text = b''.join(data for _name, data in supply_chain.files([doc]))
    assert b's3cret' not in text
    prov = json.loads(doc['files']['provenance'][1])
    assert prov['predicate']['buildDefinition']['externalParameters']['options'] == {
        'scratch': True, 'yum_repourls': ['https://***@repos.example.com/extra.repo']}
    deps = prov['predicate']['buildDefinition']['resolvedDependencies']
    assert deps[-1]['digest']['sha256'] == hashlib.sha256(repo.read_bytes()).hexdigest()
