"""The plugin config file and the osbs configuration: every bad value is a clear fault."""

import koji.tasks
import pytest

from koji_containerbuild import config, errors
from tests.builder.conftest import TARGET, write_builder_conf


def test_missing_file_gives_defaults(tmp_path):
    conf = config.load_builder_config(str(tmp_path / 'absent.conf'))
    assert conf.backend == 'osbs'
    assert conf.osbs_conf_file == '/etc/osbs.conf'
    assert conf.osbs_section('binary') == 'default_binary'
    assert conf.osbs_section('flatpak') == 'default_binary'
    assert conf.osbs_section('source') == 'default_source'
    assert conf.parser is not None


@pytest.mark.parametrize('key,value,match', [
    ('backend', 'docker', 'must be one of osbs, native'),
    ('osbs_conf_file', 'relative.conf', 'absolute path'),
    ('retry_timeout', 'soon', 'number of seconds'),
    ('poll_interval', '0', 'between'),
    ('osbs_binary_section', 'a b', 'without spaces'),
])
def test_bad_values(tmp_path, key, value, match):
    path = write_builder_conf(str(tmp_path / 'b.conf'), '/etc/osbs.conf', **{key: value})
    with pytest.raises(errors.ConfigError, match=match):
        config.load_builder_config(path)


def test_unknown_key_and_malformed_file(tmp_path):
    path = write_builder_conf(str(tmp_path / 'b.conf'), '/etc/osbs.conf', backnd='osbs')
    with pytest.raises(errors.ConfigError, match='unknown option in'):
        config.load_builder_config(path)
    bad = tmp_path / 'bad.conf'
    bad.write_text('backend = osbs\n')
    with pytest.raises(errors.ConfigError, match='not a valid configuration file'):
        config.load_builder_config(str(bad))


def _task(make_task, git_daemon, conf):
    return make_task('buildContainer', [git_daemon.url('demo'), TARGET,
                                        {'git_branch': 'main'}], config_file=conf)


def test_missing_osbs_conf_file(tmp_path, make_task, git_daemon, osbs_double):
    conf = write_builder_conf(str(tmp_path / 'b.conf'), str(tmp_path / 'nope.conf'))
    _task_id, handler = _task(make_task, git_daemon, conf)
    with pytest.raises(errors.ConfigError, match='nope.conf does not exist'):
        handler.run()


def test_missing_osbs_section(tmp_path, make_task, git_daemon, osbs_double):
    conf = write_builder_conf(str(tmp_path / 'b.conf'), str(tmp_path / 'osbs.conf'),
                              osbs_binary_section='prod_binary')
    _task_id, handler = _task(make_task, git_daemon, conf)
    with pytest.raises(errors.ConfigError, match=r'no \[prod_binary\] section'):
        handler.run()


def test_bad_buildtime_limit_in_osbs_conf(tmp_path, make_task, git_daemon, osbs_double):
    osbs_double.write_conf(str(tmp_path / 'osbs.conf'), max_buildtime_limit='lots')
    _task_id, handler = _task(make_task, git_daemon, None)
    with pytest.raises(errors.ConfigError, match='invalid'):
        handler.run()


def test_source_build_needs_osbs_backend(tmp_path, make_task, osbs_double):
    conf = write_builder_conf(str(tmp_path / 'b.conf'), str(tmp_path / 'osbs.conf'),
                              backend='native')
    _task_id, handler = make_task('buildSourceContainer', [TARGET, {'koji_build_id': 1}],
                                  config_file=conf)
    # refused (koji.tasks.RefuseTask), so the hub offers it to a builder with OSBS
    with pytest.raises(koji.tasks.RefuseTask, match='need backend = osbs'):
        handler.run()


def test_scratch_in_osbs_conf_is_refused(tmp_path, make_task, git_daemon, osbs_double):
    osbs_double.write_conf(str(tmp_path / 'osbs.conf'), scratch='true')
    _task_id, handler = _task(make_task, git_daemon, None)
    with pytest.raises(errors.ConfigError, match=r'\[default_binary\] sets scratch'):
        handler.run()
    assert osbs_double.calls('create_binary_container_build') == []


def test_undecodable_osbs_conf(tmp_path, make_task, git_daemon, osbs_double):
    (tmp_path / 'osbs.conf').write_bytes(b'[default_binary]\nnamespace = \xff\xfe\n')
    _task_id, handler = _task(make_task, git_daemon, None)
    with pytest.raises(errors.ConfigError, match='cannot be read'):
        handler.run()
