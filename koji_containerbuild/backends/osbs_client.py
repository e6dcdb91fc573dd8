"""osbs-client as the OSBS backend uses it: loading it, the client from the builder's
configuration, the create arguments (contract §2.1), starting a run and reading a
successful run's results."""

import configparser
import os
import re

from koji_containerbuild import scmurl
from koji_containerbuild.backends import osbs_capture
from koji_containerbuild.errors import BackendError, ConfigError

NOT_INSTALLED = 'osbs-client is not installed on this builder'
_RUN_NAME_RE = re.compile(r'^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\Z')
MAX_REPOSITORIES = 1000
MAX_MESSAGE = 8000


class OsbsModules(object):
    def __init__(self, api, conf, exceptions):
        self.api = api
        self.conf = conf
        self.exceptions = exceptions


def load_osbs():
    """Import osbs-client lazily: the plugin must load on builders without it."""
    try:
        import osbs.api
        import osbs.conf
        import osbs.exceptions
    except ImportError as exc:
        raise BackendError('%s (%s); install python3-osbs-client or set backend = native'
                           % (NOT_INSTALLED, exc))
    except Exception as exc:
        raise BackendError('osbs-client cannot be loaded on this builder: %s' % exc)
    osbs_capture.quiet_osbs_stderr()
    return OsbsModules(osbs.api, osbs.conf, osbs.exceptions)


def _text(value, limit=MAX_MESSAGE):
    """OSBS text for a fault message: credentials redacted, bounded."""
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    text = scmurl.redact(str(value))
    return text if len(text) <= limit else text[:limit] + '...'


def make_client(mods, config, section):
    """(OSBS client, Configuration, (default, max) build time limits)."""
    path = config.osbs_conf_file
    if not os.path.isfile(path):
        raise ConfigError('OSBS configuration file %s does not exist (osbs_conf_file in %s)'
                          % (path, config.path))
    check = configparser.RawConfigParser()
    try:
        check.read(path)
    except configparser.Error as exc:
        raise ConfigError('OSBS configuration file %s is malformed: %s'
                          % (path, str(exc).replace('\n', ' ')))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError('OSBS configuration file %s cannot be read: %s' % (path, exc))
    if not check.has_section(section):
        raise ConfigError('OSBS configuration file %s has no [%s] section (set in %s)'
                          % (path, section, config.path))
    if check.has_option(section, 'scratch'):
        # osbs-client lets it override every build's scratch flag (contract §1)
        raise ConfigError('OSBS configuration file %s: [%s] sets scratch, which would '
                          'override the scratch flag of every build; remove it'
                          % (path, section))
    try:
        conf = mods.conf.Configuration(conf_file=path, conf_section=section)
        limits = (conf.get_default_buildtime_limit(), conf.get_max_buildtime_limit())
        client = mods.api.OSBS(conf)
    except (configparser.Error, ValueError, TypeError) as exc:
        raise ConfigError('OSBS configuration [%s] in %s is invalid: %s'
                          % (section, path, exc))
    except mods.exceptions.OsbsException as exc:
        raise BackendError('Cannot set up osbs-client for [%s]: %s' % (section, _text(exc)))
    return client, conf, limits


# ------------------------------------------------------------------ create arguments

def _when_set(args, opts, names):
    for name in names:
        value = opts.get(name)
        if value is not None and value is not False and value != [] and value != {}:
            args[name] = value


def binary_create_args(plan, task_id, limits):
    """Every argument osbs-client's create_binary_container_build expects (contract §2.1)."""
    opts = plan.opts
    args = {
        'git_uri': plan.checkout.git_uri,
        'git_ref': plan.checkout.commit,
        'git_branch': plan.git_branch,
        'user': plan.owner,
        'component': plan.identity.component,
        'target': plan.target_name,
        'dependency_replacements': opts.get('dependency_replacements'),
        'yum_repourls': opts.get('yum_repourls'),
        'scratch': bool(plan.scratch),
        'koji_task_id': int(task_id),
        'platforms': list(plan.arches),
        'default_buildtime_limit': limits[0],
        'max_buildtime_limit': limits[1],
    }
    if plan.flatpak:
        args['flatpak'] = True
    if plan.isolated:
        args['isolated'] = True
    _when_set(args, opts, ('release', 'koji_parent_build', 'signing_intent', 'compose_ids',
                           'userdata', 'operator_csv_modifications_url'))
    return args


def source_create_args(plan, task_id):
    """Arguments of create_source_container_build (contract §2.1, source builds)."""
    args = {
        'user': plan.owner,
        'component': plan.component,
        'sources_for_koji_build_id': plan.build_id,
        'sources_for_koji_build_nvr': plan.build_nvr,
        'target': plan.target_name,
        'scratch': bool(plan.scratch),
        'koji_task_id': int(task_id),
    }
    _when_set(args, plan.opts, ('signing_intent', 'userdata'))
    return args


def _name_from_409(exc):
    """The run name a 409 AlreadyExists body names, or None."""
    body = getattr(exc, 'json', None)
    name = None
    if isinstance(body, dict) and isinstance(body.get('details'), dict):
        name = body['details'].get('name')
    if not isinstance(name, str):
        message = exc.message if isinstance(getattr(exc, 'message', None), str) else str(exc)
        match = re.search(r'pipelineruns(?:\.tekton\.dev)? "([^"]+)" already exists', message)
        name = match.group(1) if match else None
    if isinstance(name, str) and _RUN_NAME_RE.match(name):
        return name
    return None


def create_run(client, mods, kind, args, logger):
    """Start the run; its name. A 409 AlreadyExists (the answer to the first POST was lost
    and osbs-client's retry collided with the run it created) means the run exists."""
    create = (client.create_source_container_build if kind == 'source'
              else client.create_binary_container_build)
    exc_mod = mods.exceptions
    try:
        return client.get_build_name(create(**args))
    except exc_mod.OsbsValidationException as exc:
        raise BackendError('OSBS refused the build: %s' % _text(exc))
    except exc_mod.OsbsResponseException as exc:
        if getattr(exc, 'status_code', None) == 409:
            name = _name_from_409(exc)
            if name:
                logger.warning('Create of the OSBS pipeline run got 409 AlreadyExists; '
                               'continuing with the existing run %s', name)
                return name
        raise BackendError('OSBS could not start the build: %s' % _text(exc))
    except exc_mod.OsbsException as exc:
        raise BackendError('OSBS could not start the build: %s' % _text(exc))


# ------------------------------------------------------------------ results

def _repositories(results):
    repos = results.get('repositories')
    out = []
    if isinstance(repos, dict):
        keys = [k for k in ('primary', 'unique', 'floating') if k in repos]
        keys += sorted(k for k in repos if k not in keys and isinstance(k, str))
        lists = [repos[k] for k in keys]
    elif isinstance(repos, list):
        lists = [repos]
    else:
        lists = []
    seen = set()    # a set: OSBS answers are untrusted, de-duplication stays linear
    for items in lists:
        for item in items if isinstance(items, list) else ():
            if isinstance(item, str) and item and len(item) <= 1024 and item not in seen:
                seen.add(item)
                out.append(item)
                if len(out) >= MAX_REPOSITORIES:
                    return out
    return out


def success_result(results, scratch, warnings, logger):
    build_id = results.get('koji-build-id')
    koji_builds = []
    if build_id is not None and not isinstance(build_id, bool) and \
            re.match(r'^[1-9][0-9]{0,18}\Z', str(build_id)):
        koji_builds = [str(build_id)]
    elif build_id is not None:
        logger.warning('Ignoring invalid koji-build-id %r', str(build_id)[:100])
    elif not scratch:
        logger.warning('OSBS reported no koji-build-id for a non-scratch build')
    result = {'repositories': _repositories(results), 'koji_builds': koji_builds}
    if warnings:
        result['user_warnings'] = list(warnings)
    return result
