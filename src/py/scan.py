# SPDX-License-Identifier: MIT
# scan.py: stage-py scan runs this (after glibc.py) with --python, to find what
# the imports load.
#
# argv[1:]: the modules to import.  Prints, one record a line:
#   V version           X executable
#   P entry\tname...    a sys.path entry (in sys.path order) and the
#                       top-level names under it that the job needs
#   L dir\tname...      a directory of shared libraries that were mapped:
#                       lib*.so* only, which the loader finds by name (so
#                       LD_LIBRARY_PATH can lead it to the copy); plugins
#                       that are opened by absolute path (Open MPI's mca_*,
#                       hwloc's) could not be, and glibc must match ld.so
#   W text              a warning
import sys, os, re, importlib, importlib.metadata
real = os.path.realpath
for m in sys.argv[1:]:
    importlib.import_module(m)
out = []
print('V %d.%d.%d' % sys.version_info[:3])
print('X ' + sys.executable)
entries = []
for e in sys.path:
    if e and os.path.isdir(e) and real(e) not in [real(x) for x in entries]:
        entries.append(e)
files = set()
for name, mod in list(sys.modules.items()):
    f = getattr(mod, '__file__', None)
    if isinstance(f, str): files.add(f)
    for p in list(getattr(mod, '__path__', None) or []):
        if isinstance(p, str): files.add(os.path.join(p, ''))
mapped = set()
for line in open('/proc/self/maps'):
    f = line.split(None, 5)
    if len(f) == 6 and f[5].startswith('/') and not f[5].rstrip().endswith('(deleted)'):
        mapped.add(f[5].rstrip('\n'))
def owner(f):
    best = None
    for e in entries:
        for ef in {e.rstrip('/'), real(e)}:
            if f.startswith(ef + '/') and (best is None or len(ef) > len(best[1])):
                best = (e, ef)
    return best
used = {e: set() for e in entries}
libs = {}
exe = real(sys.executable)
for f in files | mapped:
    o = owner(f) or owner(real(f))
    if o:
        e, ef = o
        g = f if f.startswith(ef + '/') else real(f)
        top = g[len(ef) + 1:].split('/')[0]
        if top: used[e].add(top)
    elif f in mapped:
        r = real(f)
        b = os.path.basename(r)
        if r == exe or b.startswith(glibc) or not re.match(r'lib.*[.]so([.]|$)', b) or r.startswith(('/dev/', '/proc/', '/sys/', '/run/', '/tmp/', '/var/', '/usr/lib/locale/')) or '/gconv/' in r:
            continue
        libs.setdefault(os.path.dirname(r), set()).add(b)
pd = importlib.metadata.packages_distributions()
for e in entries:
    names = used[e]
    if not names: continue
    for top in list(names):
        mod = top.split('.')[0]
        if os.path.isdir(os.path.join(e, mod + '.libs')): names.add(mod + '.libs')
        for d in pd.get(mod, []):
            try: p = importlib.metadata.distribution(d)._path
            except Exception: continue
            if p and real(str(p.parent)) == real(e): names.add(p.name)
    names.update(n for n in os.listdir(e) if n.endswith('.pth'))
    if any(n.endswith('.py') for n in names) and os.path.isdir(os.path.join(e, '__pycache__')):
        names.add('__pycache__')
    ok = sorted(n for n in names if not any(c in n for c in ' \t*?[') and not n.startswith('.'))
    for n in sorted(names.difference(ok)):
        print('W %s/%s: a name that a manifest cannot hold, left out' % (e, n))
    print('P ' + '\t'.join([e] + ok))
for d in sorted(libs):
    names = set(libs[d])
    try: listing = os.listdir(d)
    except OSError: listing = []
    for n in listing:
        p = os.path.join(d, n)
        if os.path.islink(p) and os.path.basename(real(p)) in libs[d] and os.path.dirname(real(p)) == real(d):
            names.add(n)
    print('L ' + '\t'.join([d] + sorted(n for n in names if not any(c in n for c in ' \t*?['))))
