"""The auto rule of 2026-12-03 against today's, on every layer of conv3d/bench/layers.json whose
choice changed (a dev script; the table it printed is in docs/benchmarks/notes.md).

    python -m benchmarks.chooser_rules

Interleaved in a random order, best of up to 3 provider calls per strategy: forward, and the
backward with both gradients. No PyTorch: only the two rules are compared.
"""
import json, time, os, random, numpy as np
from conv3d.ops import fast
from conv3d.ops.fast import chooser, winograd
from conv3d.core.geometry import ConvGeometry
def old_auto(geo, op):
    if op=="forward" and winograd.applies(geo) and min(geo.C,geo.K)>=64: return "winograd"
    if geo.Cg==1 and geo.Kg<=4: return "direct"
    if geo.plane>=1024 and geo.dilation[0]==1: return "im2col-planes"
    if geo.plane*geo.OD<=4096 and geo.Cg*geo.taps>256: return "channels-last"
    return "im2col"
d=json.load(open(os.path.join(os.path.dirname(__file__), '..', 'conv3d', 'bench', 'layers.json')))
rng=np.random.default_rng(0)
def best(f,r):
    b=1e9
    for _ in range(r):
        t0=time.perf_counter(); f(); b=min(b,time.perf_counter()-t0)
    return b*1e3
print("load", os.getloadavg(), flush=True)
for L in d['layers']:
    if L['op']!='conv': continue
    model=L['used_by'][0].split()[0]
    for N in d['batches'][model]:
        xs=[N]+L['x'][1:]
        geo=ConvGeometry.from_shapes(xs,L['w'],L['stride'],L['padding'],L['dilation'],L['groups'])
        ch={op:(old_auto(geo,op),chooser._auto(geo,op)) for op in ("forward","backward")}
        if all(a==b for a,b in ch.values()): continue
        x=rng.standard_normal(xs,dtype=np.float32); w=(rng.standard_normal(L['w'],dtype=np.float32)*0.05)
        args=(L['stride'],L['padding'],L['dilation'],L['groups'])
        y=fast.provider.conv3d_forward(x,w,None,*args); gy=np.ones_like(y)
        res={}
        for op in ("forward","backward"):
            o,n=ch[op]
            def run(name):
                with fast.use_strategy(name):
                    if op=="forward": fast.provider.conv3d_forward(x,w,None,*args)
                    else: fast.provider.conv3d_backward(gy,x,w,*args,(True,True))
            t={}
            for name in {o,n}: run(name)
            r=3 if geo.N*geo.plane*geo.OD*geo.Cg*geo.taps*geo.K < 5e10 else 1
            for _ in range(r):
                order=list({o,n}); random.shuffle(order)
                for name in order: t[name]=min(t.get(name,1e9),best(lambda: run(name),1))
            res[op]=(o,n,t[o],t[n])
        f=res["forward"]; b=res["backward"]
        print(f"{L['name'][:40]:40s} N={N}: fwd {f[0]}->{f[1]} {f[2]:.1f}->{f[3]:.1f} ms | bwd {b[0]}->{b[1]} {b[2]:.1f}->{b[3]:.1f} ms", flush=True)
print("load", os.getloadavg())
