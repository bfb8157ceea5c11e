"""Explore Part II training settings on a GPU: many `python -m msa_nb.train` runs side by side, one JSON of their results.

    python3 scripts/part2_sweep.py OUT.json [--par 12]
Stored as data/part2_sweep.json (chapter 13): what training reached, per setting, in 1500 steps, BEFORE token shift
and router loss: every run is given the training CLI's defaults of that time (no shift, no router loss, rotated selected
branch, two layers, chunk 64), so the sweep still means what the chapter says after the defaults changed."""
import json, os, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
R = 'recall --seq-len 2048 --seed 0'
S = 'selective-copy --seq-len 2048 --min-gap 200 --max-gap 400 --seed 0'
DONE, LOCK = {}, threading.Lock()
C = ' --steps 1500 --batch-size 16 --eval-every 100'
RUNS = {
 'N128 W64 local only': 'recall --seq-len 128 --min-gap 16 --window 64 --memory routed --chunk 16 --gate local --pairs 4 --keys 16 --values 16' + C,
 'N128 routed P16 W8': 'recall --seq-len 128 --min-gap 16 --memory routed --chunk 16 --top-k 2 --pairs 4 --keys 16 --values 16' + C,
 'N512 routed P16 k4': 'recall --seq-len 512 --memory routed --chunk 16 --top-k 4' + C,
 'routed P64 k4': R + ' --memory routed' + C,
 'routed P16 k8': R + ' --memory routed --chunk 16 --top-k 8' + C,
 'routed P32 k4': R + ' --memory routed --chunk 32 --top-k 4' + C,
 'routed P16 k4 pairs4 kv16': R + ' --memory routed --chunk 16 --top-k 4 --pairs 4 --keys 16 --values 16' + C,
 'routed P64 k4 pairs4 kv16': R + ' --memory routed --pairs 4 --keys 16 --values 16' + C,
 'chunks P16': R + ' --memory chunks --chunk 16' + C,
 'chunks P64 pairs4 kv16': R + ' --memory chunks --pairs 4 --keys 16 --values 16' + C,
 'routed P64 lr2e-3': R + ' --memory routed --lr 2e-3' + C,
 'routed P16 k4 lr2e-3': R + ' --memory routed --chunk 16 --lr 2e-3' + C,
 'routed P16 k4 d128': R + ' --memory routed --chunk 16 --d-model 128' + C,
 'routed P32 k8 lr1e-2': R + ' --memory routed --chunk 32 --top-k 8 --lr 1e-2' + C,
 'sc routed P16 L2': S + ' --memory routed --chunk 16 --layers 2' + C,
 'sc routed P64 L2': S + ' --memory routed --layers 2' + C,
}
if os.environ.get('SWEEP_ONLY'): RUNS = {k: v for k, v in RUNS.items() if k in os.environ['SWEEP_ONLY'].split(',')}

def then(args:str)->str:
    "The options the CLI defaulted to when the sweep was run (explicit ones in the spec win)."
    if '--chunk' not in args: args += ' --chunk 64'
    if '--layers' not in args: args += ' --layers 2'
    if '--min-gap' not in args: args += ' --min-gap 128'                   # 8 L W with L = 2, W = 8
    return args + ' --shift off --router-loss 0 --rope-selected on'

def one(item):
    name, args = item
    args = then(args)
    with tempfile.NamedTemporaryFile(suffix='.json') as f:
        t = time.time()
        r = subprocess.run([sys.executable, '-m', 'msa_nb.train', *args.split(), '--device', 'cuda', '--quiet', '--json', f.name],
                           capture_output=True, text=True)
        if r.returncode:
            with LOCK: DONE[name] = {'args': args, 'error': r.stderr[-800:]}; json.dump(DONE, open(sys.argv[1], 'w'), indent=1)
            return name, DONE[name]
        res = json.load(open(f.name))
    out = {k: res.get(k) for k in ('acc', 'non_blank_acc', 'chance', 'steps', 'steps_to_96', 'eval_curve', 'train_s', 'params')}
    with LOCK: DONE[name] = {'args': args, **out}; json.dump(DONE, open(sys.argv[1], 'w'), indent=1)
    print(f"{name:<36} acc {res.get('acc', res.get('non_blank_acc')):.3f} t {res['train_s']:.0f}s", flush=True)
    return name, {'args': args, **out}

if __name__ == '__main__':
    par = int(sys.argv[sys.argv.index('--par') + 1]) if '--par' in sys.argv else 12
    import platform, torch
    meta = {'device': torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor(), 'torch': torch.__version__,
            'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'command': 'python3 scripts/part2_sweep.py ' + ' '.join(sys.argv[1:]),
            'parallel_runs': par, 'note': f'a search for training settings, {par} runs side by side (train_s is therefore not a speed measurement)'}
    with ThreadPoolExecutor(par) as ex: res = dict(ex.map(one, RUNS.items()))
    json.dump({'meta': meta, 'runs': res}, open(sys.argv[1], 'w'), indent=1)
