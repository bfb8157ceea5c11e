"""Memory-parallel needle search (chapter 15): the store sharded over 2 processes with torch.distributed (gloo, CPU)
must select the same documents and give the same answers as one process. Compared through the run's `digest`
(a hash of every selected document id and every answer) on the last JSON line of `python -m msa_nb.niah`."""
import json, os, socket, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ['-m', 'msa_nb.niah', '--tokens', '8192', '--questions', '20', '--seed', '0', '--threads', '1']


def _rows(cmd):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, f'{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return [json.loads(l) for l in r.stdout.splitlines() if l.startswith('{')]


def test_two_processes_answer_like_one():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    one = _rows([sys.executable] + ARGS)
    two = _rows([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2', '--master-addr', '127.0.0.1',
                 '--master-port', str(port)] + ARGS)
    assert [r['tokens'] for r in one] == [r['tokens'] for r in two] == [8192]
    assert all(r['world'] == 1 for r in one) and all(r['world'] == 2 for r in two)
    for a, b in zip(one, two):
        assert a['digest'] == b['digest'], (a, b)
        assert (a['acc'], a['router_top1'], a['router_recall_at_k']) == (b['acc'], b['router_top1'], b['router_recall_at_k'])
