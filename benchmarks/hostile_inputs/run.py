#!/usr/bin/env python3
"""Hostile inputs at the size limits the code enforces: time and peak memory per case.

Every `cases_*.py` module in this folder defines

    CASES = [(name, size_text, func), ...]

where func() feeds one hostile input, at the limit the code enforces, to the code that
must refuse or handle it (a refusal is the expected outcome: a koji.GenericError raised
by func counts as handled; any other exception is reported as an ERROR row). A module may
also define setup(name), called in the child before the idle memory is measured (start a
server there, build a big input), so that only func's own work is measured.

Each case runs in a fresh child process (`run.py --child MODULE NAME`): the child
imports the module, runs setup, resets the kernel's peak-RSS mark (/proc/self/clear_refs,
"5"), measures its idle RSS, runs func once, and reports wall seconds and the peak RSS
(VmHWM) over the idle RSS. Goal per row: <= 1 s and <= 64 MiB over idle.

Usage: run.py [--timeout S] [--only SUBSTRING]
"""

import argparse
import glob
import importlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOAL_SECONDS = 1.0
GOAL_MIB = 64.0


def _status_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return 0


def _modules():
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(HERE, 'cases_*.py')))
    return names


def child(module_name, case_name):
    sys.path[:0] = [HERE, ROOT]
    module = importlib.import_module(module_name)
    func = dict((name, f) for name, _size, f in module.CASES)[case_name]
    if hasattr(module, 'setup'):
        module.setup(case_name)
    import gc
    gc.collect()
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')          # reset VmHWM: the peak counts from here
    except OSError:
        pass
    idle = _status_kib('VmRSS')
    outcome = 'handled'
    started = time.perf_counter()
    try:
        func()
    except Exception as exc:      # noqa: B902 - the outcome is reported, not raised
        import koji
        if isinstance(exc, koji.GenericError):
            outcome = 'refused: %s' % str(exc)[:70]
        else:
            outcome = 'ERROR %s: %s' % (type(exc).__name__, str(exc)[:60])
    seconds = time.perf_counter() - started
    peak = _status_kib('VmHWM')
    print(json.dumps({'seconds': seconds, 'peak_mib': max(0, peak - idle) / 1024.0,
                      'outcome': outcome}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--child', nargs=2, metavar=('MODULE', 'CASE'), help=argparse.SUPPRESS)
    parser.add_argument('--timeout', type=float, default=120.0,
                        help='seconds before a case is stopped (reported as a timeout)')
    parser.add_argument('--only', default='', help='run only cases whose name contains this')
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    sys.path[:0] = [HERE, ROOT]
    rows = []
    for module_name in _modules():
        try:
            module = importlib.import_module(module_name)
            cases = list(module.CASES)
        except Exception as exc:     # noqa: B902 - one broken module does not hide the rest
            rows.append((module_name, '-', {'seconds': float('nan'), 'peak_mib': float('nan'),
                                            'outcome': 'IMPORT ERROR %s: %s'
                                            % (type(exc).__name__, exc)}, False))
            print('%-44s IMPORT ERROR %s: %s' % (module_name, type(exc).__name__, exc))
            continue
        for name, size, _func in cases:
            if args.only and args.only not in name:
                continue
            cmd = [sys.executable, os.path.abspath(__file__), '--child', module_name, name]
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      timeout=args.timeout, cwd=ROOT)
                lines = proc.stdout.decode('utf-8', 'replace').strip().splitlines()
                result = json.loads(lines[-1]) if proc.returncode == 0 and lines else {
                    'seconds': float('nan'), 'peak_mib': float('nan'),
                    'outcome': 'CRASH rc=%s %s' % (proc.returncode, proc.stderr.decode(
                        'utf-8', 'replace').strip().splitlines()[-1:])}
            except subprocess.TimeoutExpired:
                result = {'seconds': args.timeout, 'peak_mib': float('nan'),
                          'outcome': 'TIMEOUT'}
            ok = (result['seconds'] <= GOAL_SECONDS and result['peak_mib'] <= GOAL_MIB
                  and not result['outcome'].startswith(('ERROR', 'CRASH', 'TIMEOUT')))
            rows.append((module_name[len('cases_'):] + ':' + name, size, result, ok))
            print('%-44s %-22s %8.3f s %8.1f MiB  %-11s %s' % (
                rows[-1][0], size, result['seconds'], result['peak_mib'],
                'OK' if ok else 'over goal', result['outcome']), flush=True)
    print()
    print('| case | size | seconds | peak RSS over idle (MiB) | goal (<= 1 s, <= 64 MiB) |')
    print('|---|---|---|---|---|')
    for name, size, result, ok in rows:
        print('| %s | %s | %.3f | %.1f | %s |' % (name, size, result['seconds'],
                                                 result['peak_mib'],
                                                 'OK' if ok else '**over goal**'))
    return 0 if all(ok for *_rest, ok in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
