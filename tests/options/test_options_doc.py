"""docs/options.md is generated from the options table and must not drift from it."""

import importlib.util
import os
import subprocess
import sys

from koji_containerbuild import options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'scripts', 'gen_options_doc.py')


def load_generator():
    spec = importlib.util.spec_from_file_location('gen_options_doc', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_options_md_is_current():
    with open(os.path.join(ROOT, 'docs', 'options.md')) as f:
        current = f.read()
    assert current == load_generator().render(), \
        'docs/options.md differs from the options table: run python scripts/gen_options_doc.py'


def test_doc_lists_every_option_flag_and_rule():
    text = load_generator().render()
    for kind in options.KINDS:
        section = text.split('## ')[1 + options.KINDS.index(kind)]
        for opt in options.options_for(kind):
            assert '| `%s` |' % opt.name in section
            if opt.cli:
                assert '`%s' % opt.cli in section
        for rule in options.rules_for(kind):
            assert rule.message in section


def test_check_mode_reports_a_stale_file(tmp_path):
    generator = load_generator()
    generator.DOC = str(tmp_path / 'options.md')
    assert generator.main(['--check']) == 1  # missing
    (tmp_path / 'options.md').write_text('# stale\n')
    assert generator.main(['--check']) == 1
    assert generator.main([]) == 0
    assert generator.main(['--check']) == 0
    assert (tmp_path / 'options.md').read_text() == generator.render()


def test_script_runs_standalone():
    proc = subprocess.run([sys.executable, SCRIPT, '--check'], cwd=str(ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stdout


def test_notes_explain_the_decisions():
    notes = load_generator().render().split('## Notes', 1)[1]
    assert 'rpkg' in notes and '`None` meaning unset' in notes and 'skip_build' in notes
    arch_rule = [r for r in options.RULES if r.names == ('arch_override',)][0]
    assert arch_rule.message in notes and 'every door' in notes
    assert "'isolated' needs 'release'" in notes
    assert 'credentials' in notes and 'NaN' in notes
