"""A `git` that holds every fetch until the test opens a gate (kojid killed mid-fetch)."""


def slow_git(tmp_path):
    """A `git` first on PATH that blocks every `git fetch` until the test opens the gate
    (the fetch is where a big repository spends its time)."""
    bindir = tmp_path / 'slowbin'
    bindir.mkdir()
    gate = tmp_path / 'gate'
    script = bindir / 'git'
    script.write_text(
        '#!/bin/sh\n'
        'for arg in "$@"; do\n'
        '  if [ "$arg" = fetch ]; then\n'
        '    touch %s.waiting\n'
        '    while [ ! -e %s.open ]; do sleep 0.05; done\n'
        '    break\n'
        '  fi\n'
        'done\n'
        'exec /usr/bin/git "$@"\n' % (gate, gate))
    script.chmod(0o755)
    return bindir, gate
