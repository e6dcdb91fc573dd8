"""The bundled examples and a multi-stage build through the local command: SBOM and
provenance next to metadata.json, in the import directory, and attached in the registry
(fetched with plain registry HTTP calls, as docs/supply-chain.md tells a consumer)."""

import hashlib
import json
import os

import requests

from koji_containerbuild.local import cli
from tests.supply_chain.validators import assert_valid

OCI = 'application/vnd.oci.image.manifest.v1+json'
MULTI_STAGE = '''FROM koji-example/base:1.0-1 AS build
RUN echo built > /built
FROM koji-example/app:1.0-1
COPY --from=build /built /srv/built
LABEL com.redhat.component="kcb-multi-container" name="koji-example/multi" \\
      version="1.0" release="1"
'''


def build(source, registry, out, capsys):
    rc = cli.main(['build', '-q', '--registry', registry.url, '--output-dir', str(out),
                   source])
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    sbom_path = os.path.join(str(out), 'sbom-x86_64.spdx.json')
    prov_path = os.path.join(str(out), 'provenance-x86_64.intoto.json')
    assert 'sbom:       %s' % sbom_path in stdout
    assert 'provenance: %s' % prov_path in stdout
    files = {}
    for kind, path in (('sbom', sbom_path), ('provenance', prov_path)):
        with open(path, 'rb') as f:
            files[kind] = (os.path.basename(path), f.read())
        with open(os.path.join(str(out), 'import', os.path.basename(path)), 'rb') as f:
            assert f.read() == files[kind][1]
    assert_valid(files)
    meta = json.loads((out / 'metadata.json').read_text())
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['supply_chain'] == [sbom_path, prov_path]
    return files, meta


def fetch_attachment(registry, repo, digest, suffix):
    """What a consumer does: GET the tag manifest, then its one layer blob."""
    tag = digest.replace(':', '-') + '.' + suffix
    base = '%s/v2/%s' % (registry.url, repo)
    resp = requests.get('%s/manifests/%s' % (base, tag), headers={'Accept': OCI}, timeout=10)
    assert resp.status_code == 200, resp.text
    manifest = resp.json()
    assert manifest['subject']['digest'] == digest
    layer, = manifest['layers']
    blob = requests.get('%s/blobs/%s' % (base, layer['digest']), timeout=10).content
    assert 'sha256:' + hashlib.sha256(blob).hexdigest() == layer['digest']
    return manifest, blob


def check_outputs(meta, files):
    outputs = dict((o['filename'], o) for o in meta['output'])
    for name, data in files.values():
        out = outputs[name]
        assert out['extra']['image']['arch'] == 'x86_64' and out['type'] == 'json'
        assert out['checksum'] == hashlib.sha256(data).hexdigest()
    named = meta['build']['extra']['image']['supply_chain']['x86_64']
    assert named['sbom']['filename'] == files['sbom'][0]
    assert named['provenance']['filename'] == files['provenance'][0]


def test_examples_and_multi_stage(examples, registry, tmp_path, capsys):
    # base: FROM scratch, one RPM
    files, meta = build(os.path.join(examples, 'base'), registry, tmp_path / 'base', capsys)
    check_outputs(meta, files)
    spdx = json.loads(files['sbom'][1])
    hello, = [p for p in spdx['packages'] if p['name'] == 'koji-example-hello']
    assert hello['licenseDeclared'] == 'MIT'
    assert hello['externalRefs'][0]['referenceLocator'] == \
        'pkg:rpm/koji-example-hello@1.0-1?arch=noarch'
    assert hello['checksums'][0]['algorithm'] == 'MD5'
    digest = meta['output'][0]['extra']['docker']['digests'].popitem()[1]
    manifest, blob = fetch_attachment(registry, 'koji-example/base', digest, 'sbom')
    assert blob == files['sbom'][1]
    assert manifest['artifactType'] == 'application/spdx+json'
    _manifest, blob = fetch_attachment(registry, 'koji-example/base', digest, 'att')
    assert blob == files['provenance'][1]
    prov = json.loads(files['provenance'][1])
    assert prov['predicate']['runDetails']['builder']['id'] == 'local'
    assert prov['subject'][0]['digest'] == {'sha256': digest.split(':')[1]}
    base_digest = digest
    # app: FROM the base just built (pinned by digest in the build registry)
    files, meta = build(os.path.join(examples, 'app'), registry, tmp_path / 'app', capsys)
    spdx = json.loads(files['sbom'][1])
    base_pkg, = [p for p in spdx['packages'] if p['name'] == 'koji-example/base']
    assert base_pkg['checksums'][0]['checksumValue'] == base_digest.split(':')[1]
    prov = json.loads(files['provenance'][1])
    deps = prov['predicate']['buildDefinition']['resolvedDependencies']
    assert {'sha256': base_digest.split(':')[1]} in [d.get('digest') for d in deps]
    # multi-stage: a build stage FROM base, the final stage FROM app
    src = tmp_path / 'multi'
    src.mkdir()
    (src / 'Dockerfile').write_text(MULTI_STAGE)
    files, meta = build(str(src), registry, tmp_path / 'multi-out', capsys)
    spdx = json.loads(files['sbom'][1])
    image_id = spdx['packages'][0]['SPDXID']
    ids = dict((p['name'], p['SPDXID']) for p in spdx['packages'])
    rels = [(r['spdxElementId'], r['relationshipType'], r['relatedSpdxElement'])
            for r in spdx['relationships']]
    assert (ids['koji-example/base'], 'BUILD_DEPENDENCY_OF', image_id) in rels
    assert (image_id, 'DESCENDANT_OF', ids['koji-example/app']) in rels
    assert (image_id, 'CONTAINS', ids['koji-example-hello']) in rels
