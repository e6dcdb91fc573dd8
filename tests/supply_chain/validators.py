"""The maintained validators the documents must pass: spdx-tools (SPDX 2.3 JSON parser +
validator) and jsonschema with our in-toto Statement v1 / SLSA provenance v1 schema."""

import json
import os
import tempfile

import jsonschema
from spdx_tools.spdx.parser.json import json_parser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'intoto_slsa_provenance_v1.schema.json')
with open(SCHEMA_PATH) as _f:
    SCHEMA = json.load(_f)
jsonschema.Draft202012Validator.check_schema(SCHEMA)
_PROVENANCE = jsonschema.Draft202012Validator(SCHEMA)


def spdx_problems(data):
    """Validation messages of SPDX 2.3 JSON bytes (parsed from a file by spdx-tools)."""
    with tempfile.NamedTemporaryFile(suffix='.spdx.json') as f:
        f.write(data)
        f.flush()
        document = json_parser.parse_from_file(f.name)
    return [m.validation_message for m in
            validate_full_spdx_document(document, spdx_version='SPDX-2.3')]


def provenance_problems(data):
    return [e.message for e in _PROVENANCE.iter_errors(json.loads(data))]


def assert_valid(files):
    """files: {'sbom': (name, bytes), 'provenance': (name, bytes)}."""
    assert spdx_problems(files['sbom'][1]) == []
    assert provenance_problems(files['provenance'][1]) == []
