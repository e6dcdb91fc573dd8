"""A real `git daemon` on 127.0.0.1 serving bare repositories, and a repository builder.

Used by tests/source, tests/builder, tests/native, tests/native_koji and
benchmarks/source_fetch. Each GitDaemon has its own base directory and a free port
(retried if another process takes the port first), so it is safe under pytest-xdist.
"""

import os
import shutil
import subprocess

from tests.support.net import free_port, wait_for_port

GIT_ENV = {
    'GIT_CONFIG_NOSYSTEM': '1',
    'GIT_CONFIG_GLOBAL': '/dev/null',
    'GIT_AUTHOR_NAME': 'Test Author',
    'GIT_AUTHOR_EMAIL': 'author@example.com',
    'GIT_COMMITTER_NAME': 'Test Author',
    'GIT_COMMITTER_EMAIL': 'author@example.com',
    'GIT_TERMINAL_PROMPT': '0',
    'LC_ALL': 'C',
}


def git_env():
    env = dict(os.environ)
    env.update(GIT_ENV)
    return env


def git(*args, **kwargs):
    """Run git with a clean config; return stdout (text)."""
    cwd = kwargs.pop('cwd', None)
    out = subprocess.run(('git',) + args, cwd=cwd, env=git_env(), check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return out.stdout.decode('utf-8', 'replace')


class GitDaemon(object):
    """`git daemon --export-all --base-path=<base> --enable=upload-pack` on 127.0.0.1.

    ``start()``/``stop()``, or ``with GitDaemon(base) as daemon:`` (started, then stopped).
    """

    def __init__(self, base):
        self.base = str(base)
        self.proc = None
        self.port = None
        os.makedirs(os.path.join(self.base, 'repos'), exist_ok=True)
        os.makedirs(os.path.join(self.base, 'work'), exist_ok=True)

    @property
    def repos(self):
        return os.path.join(self.base, 'repos')

    def start(self, attempts=5):
        for _ in range(attempts):
            port = free_port()
            proc = subprocess.Popen(
                ['git', 'daemon', '--export-all', '--base-path=' + self.repos,
                 '--enable=upload-pack', '--listen=127.0.0.1', '--port=%d' % port,
                 '--reuseaddr', '--informative-errors', self.repos],
                env=git_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_for_port(port, proc):
                self.proc, self.port = proc, port
                return self
            proc.kill()
            proc.wait()
        raise RuntimeError('git daemon did not start')

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def url(self, name, ref='main', module=None, scheme='git://'):
        query = '?%s' % module if module else ''
        return '%s127.0.0.1:%d/%s.git%s#%s' % (scheme, self.port, name, query, ref)

    def create(self, name, commits, allow_filter=True, tags=None):
        """Create bare repo <name>.git from `commits`: [{path: bytes|str|None|('link', target)}].

        None deletes a path. Returns the list of commit shas (oldest first). `tags`:
        {tag: commit index} (annotated tags).
        """
        work = os.path.join(self.base, 'work', name)
        if os.path.exists(work):
            shutil.rmtree(work)
        git('init', '-q', '-b', 'main', work)
        shas = []
        for index, files in enumerate(commits):
            for path, content in files.items():
                full = os.path.join(work, path)
                if content is None:
                    git('rm', '-q', '-r', '--', path, cwd=work)
                    continue
                os.makedirs(os.path.dirname(full), exist_ok=True)
                if os.path.lexists(full):
                    os.unlink(full)
                if isinstance(content, tuple):
                    os.symlink(content[1], full)
                else:
                    if isinstance(content, str):
                        content = content.encode('utf-8')
                    with open(full, 'wb') as handle:
                        handle.write(content)
            git('add', '-A', cwd=work)
            git('commit', '-q', '--allow-empty', '-m', 'commit %d' % index, cwd=work)
            shas.append(git('rev-parse', 'HEAD', cwd=work).strip())
        for tag, index in (tags or {}).items():
            git('tag', '-a', tag, '-m', 'tag ' + tag, shas[index], cwd=work)
        self._publish(name, work, allow_filter)
        return shas

    def create_from_dir(self, name, path):
        """Bare repo <name>.git with one commit of directory `path` as it is, git-ignored
        files included (a build context with its prepared rootfs). Returns the sha."""
        work = os.path.join(self.base, 'work', name)
        if os.path.exists(work):
            shutil.rmtree(work)
        shutil.copytree(str(path), work, symlinks=True)
        git('init', '-q', '-b', 'main', work)
        git('add', '-A', '-f', cwd=work)
        git('commit', '-q', '-m', 'import %s' % os.path.basename(str(path)), cwd=work)
        self._publish(name, work, True)
        return git('rev-parse', 'HEAD', cwd=work).strip()

    def _publish(self, name, work, allow_filter):
        bare = os.path.join(self.repos, name + '.git')
        if os.path.exists(bare):
            shutil.rmtree(bare)
        git('clone', '-q', '--bare', work, bare)
        if allow_filter:
            git('config', 'uploadpack.allowFilter', 'true', cwd=bare)

    def blob_sha(self, name, commit, path):
        bare = os.path.join(self.repos, name + '.git')
        return git('rev-parse', '%s:%s' % (commit, path), cwd=bare).strip()
