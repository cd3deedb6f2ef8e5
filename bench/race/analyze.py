#!/usr/bin/env python3
"""Figures for bench/race_ansible.sh.

analyze.py N WORKDIR: reads WORKDIR/sp-v*.jsonl (sallyport rollout --json),
WORKDIR/an-v*.jsonl (race_times callback), WORKDIR/*.wall (office wall ms of
each timed run) and WORKDIR/ssh_true.ms, prints the table rows for this N and
appends them to WORKDIR/../rows.tsv.
"""
import glob
import json
import os
import statistics
import sys

n = int(sys.argv[1])
work = sys.argv[2]


def med(xs):
    return statistics.median(xs) if xs else float('nan')


def wall(tag):
    with open(os.path.join(work, tag + '.wall')) as f:
        return int(f.read().strip())


def sallyport(path):
    """Per host: wall, out of rotation, drain wait, start->healthy, step durations."""
    begin, hosts, engine_ms = {}, {}, None
    for line in open(path):
        e = json.loads(line)
        if e['event'] == 'step':
            k = (e['host'], e['step'])
            if e['phase'] == 'begin':
                begin[k] = e['ts_ms']
            else:
                hosts.setdefault(e['host'], {})[e['step']] = (begin[k], e['ts_ms'])
        elif e['event'] == 'host_done':
            h = hosts.setdefault(e['host'], {})
            h['_wall'] = e['elapsed_ms']
            h['_oor'] = e['detail']['out_of_rotation_ms']
        elif e['event'] == 'rollout_finished':
            engine_ms = e['elapsed_ms']
            assert e['detail']['status'] == 'succeeded', path
    out = []
    for name, s in hosts.items():
        dur = {k: v[1] - v[0] for k, v in s.items() if not k.startswith('_')}
        drain_wait = dur['wait_sessions']
        start_healthy = s['health'][1] - s['start'][0]
        out.append(dict(host=name, wall=s['_wall'], oor=s['_oor'], drain_wait=drain_wait,
                        start_healthy=start_healthy, steps=dur))
    return out, engine_ms


def ansible(path):
    rows = {}
    for line in open(path):
        e = json.loads(line)
        assert e['phase'] != 'fail', (path, e)
        rows.setdefault(e['host'], {}).setdefault(e['task'], {})[e['phase']] = e['ts_ms']
    out = []
    for name, t in rows.items():
        b = lambda k: t[k]['begin']
        en = lambda k: t[k]['end']
        first = min(v['begin'] for v in t.values())
        last = max(v['end'] for v in t.values())
        out.append(dict(host=name, wall=last - first, oor=en('wait UP') - b('drain'),
                        drain_wait=en('wait sessions 0') - b('wait sessions 0'),
                        start_healthy=en('wait healthy') - b('start new app'),
                        steps={k: v['end'] - v['begin'] for k, v in t.items()}))
    return out, None


def summarize(tool, files, parse, prefix):
    hosts, totals = [], []
    for f in sorted(files):
        tag = os.path.basename(f)[:-len('.jsonl')]
        h, _ = parse(f)
        assert len(h) == n, (f, len(h))
        hosts += h
        totals.append(wall(tag))
    r = dict(tool=tool, runs=len(totals), total=med(totals), totals=totals,
             per_host_wall=med([h['wall'] for h in hosts]),
             total_over_n=med([t / n for t in totals]),
             oor=med([h['oor'] for h in hosts]),
             overhead=med([h['wall'] - (h['drain_wait'] + h['start_healthy']) for h in hosts]),
             steps={})
    for k in hosts[0]['steps']:
        r['steps'][k] = med([h['steps'][k] for h in hosts])
    return r


sp = summarize('sallyport', glob.glob(os.path.join(work, 'sp-v[2-9].jsonl')), sallyport, 'sp')
an = summarize('ansible', glob.glob(os.path.join(work, 'an-v[2-9].jsonl')), ansible, 'an')
ssh_ms = [float(x) for x in open(os.path.join(work, 'ssh_true.ms')).read().split()]

print(f"\n== N={n} ==  (medians over {sp['runs']} timed runs x {n} hosts per tool)")
print('step medians, ms:')
for r in (sp, an):
    print(f"  {r['tool']:<9} " + '  '.join(f"{k}={v:.0f}" for k, v in r['steps'].items()))
print(f"  sallyport overhead excluding pull (artifact upload or image pull): "
      f"{sp['overhead'] - sp['steps'].get('pull', 0):.0f} ms/host (median overhead - median pull)")
qs = statistics.quantiles(ssh_ms, n=10)
print(f"ssh `true` on a reused connection through the bastion ({len(ssh_ms)} runs): "
      f"median {med(ssh_ms):.1f} ms, p90 {qs[8]:.1f} ms, min {min(ssh_ms):.1f} ms")

with open(os.path.join(work, '..', 'rows.tsv'), 'a') as f:
    for r in (sp, an):
        f.write('\t'.join(str(x) for x in (
            n, r['tool'], '/'.join(f"{t / 1000:.2f}" for t in r['totals']), f"{r['per_host_wall']:.0f}",
            f"{r['total_over_n']:.0f}", f"{r['oor']:.0f}", f"{r['overhead']:.0f}")) + '\n')
    f.write('\t'.join(str(x) for x in (
        n, 'ratio A/S', f"{an['total'] / sp['total']:.2f}x", f"{an['per_host_wall'] / sp['per_host_wall']:.2f}x",
        f"{an['total_over_n'] / sp['total_over_n']:.2f}x", f"{an['oor'] / sp['oor']:.2f}x",
        f"{an['overhead'] / sp['overhead']:.2f}x")) + '\n')
    f.write('\t'.join((str(n), 'ssh true', f"median {med(ssh_ms):.1f} ms", '', '', '', '')) + '\n')
