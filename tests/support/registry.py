"""A real docker-distribution registry (/usr/bin/docker-registry) on 127.0.0.1.

Used by tests/native and tests/native_koji: each RunningRegistry has its own storage
directory and a free port; ``auth=True`` puts it behind htpasswd (USER / PASSWORD) and
writes a containers-auth.json for it.
"""

import base64
import json
import os
import subprocess

from koji_containerbuild.registry import Registry
from tests.support.net import free_port, wait_for_http

USER, PASSWORD = 'kcbuser', 'S3cret-pass-9d1f'


class RunningRegistry(object):
    def __init__(self, base, auth=False, delete=False):
        os.makedirs(base)
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.host = '127.0.0.1:%d' % self.port
        self.authfile = None
        auth_conf = ''
        if auth:
            htpasswd = os.path.join(base, 'htpasswd')
            out = subprocess.run(['htpasswd', '-Bbn', USER, PASSWORD], check=True,
                                 stdout=subprocess.PIPE).stdout
            with open(htpasswd, 'wb') as f:
                f.write(out)
            auth_conf = 'auth:\n  htpasswd:\n    realm: kcb-test\n    path: %s\n' % htpasswd
            self.authfile = os.path.join(base, 'auth.json')
            token = base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode()
            with open(self.authfile, 'w') as f:
                json.dump({'auths': {self.host: {'auth': token}}}, f)
        config = os.path.join(base, 'config.yml')
        with open(config, 'w') as f:
            f.write('version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n'
                    '    rootdirectory: %s\n%s%shttp:\n  addr: %s\n'
                    % (os.path.join(base, 'data'),
                       '  delete:\n    enabled: true\n' if delete else '', auth_conf,
                       self.host))
        self.log = open(os.path.join(base, 'registry.log'), 'wb')
        self.proc = subprocess.Popen(['/usr/bin/docker-registry', 'serve', config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for_http(self.url + '/v2/', self.proc):
            self.stop()
            raise RuntimeError('registry did not start (see %s)' % self.log.name)

    def client(self, **kwargs):
        return Registry(self.url, tls_verify=False, credentials_file=self.authfile, **kwargs)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
