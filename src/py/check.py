# SPDX-License-Identifier: MIT
# check.py: stage-py check runs this (after glibc.py) with --python under a
# staging run's settings, to find what the imports still load from outside
# the copy.
#
# argv[1]: the copy ($STAGE_PY_DIR); argv[2]: what the trees stage, one a
# line: "=path" (a tree's source, or a name its include spells out),
# "*dir/glob" (an include glob) or "~source" (a [tree]'s source: what is
# below it is the tree's, staged or not); argv[3:]: the modules.  Prints, for each
# file opened or mapped from outside the copy:
# "EXE\tsys.executable" first, then "ORIGINAL|OUTSIDE\tkind\tpath\treason"; the last line: "N M": N such
# files, M of them modules from below a staged path (shared objects and
# data from there are listed, but plugins opened by absolute path, such as
# Open MPI's, cannot come from the copy, and metadata scans read every
# distribution's files).  Like glibc, the libraries that the interpreter
# maps before any import (its own, from the node's system) are not
# counted when no tree holds them.
import sys, os, fnmatch
def maps():
    out = set()
    for line in open('/proc/self/maps'):
        f = line.split(None, 5)
        if len(f) == 6 and f[5].startswith('/') and not f[5].rstrip().endswith('(deleted)'):
            out.add(f[5].rstrip('\n'))
    return out
boot = maps()
opened = []
def hook(ev, a):
    if ev == 'open' and a and isinstance(a[0], (str, bytes)):
        opened.append(os.fsdecode(a[0]))
sys.addaudithook(hook)
import importlib
copy, mods = sys.argv[1], sys.argv[3:]
items = [(s[1:].rsplit('/', 1)[0], s[1:].rsplit('/', 1)[1]) if s[0] == '*' else (s[1:], None)
         for s in sys.argv[2].split('\n') if s and s[0] in '=*']
roots = [s[1:].rstrip('/') for s in sys.argv[2].split('\n') if s and s[0] == '~']
for m in mods: importlib.import_module(m)
real = os.path.realpath
files = {}
for name, mod in list(sys.modules.items()):
    spec = getattr(mod, '__spec__', None)
    if spec is not None and spec.origin in ('frozen', 'built-in'): continue
    f = getattr(mod, '__file__', None)
    if isinstance(f, str): files.setdefault(os.path.abspath(f), 'module')
for f in opened:
    files.setdefault(os.path.abspath(f), 'data')
for f in maps():
    files.setdefault(f, 'shared object')
def holder(f, r):
    # the staged path that holds f: f as the copy mirrors it, or None
    for d, pat in items:
        for p, base in ((f, d.rstrip('/')), (r, real(d))):
            if not p.startswith(base + '/'): continue
            if pat is None or fnmatch.fnmatchcase(p[len(base) + 1:].split('/')[0], pat):
                return d.rstrip('/') + p[len(base):]
    for d in roots:
        # below a tree's source, which its include or exclude leaves out
        for p, base in ((f, d), (r, real(d))):
            if p.startswith(base + '/'): return d + p[len(base):]
    return None
exe, rcopy = real(sys.executable), real(copy)
# (as tempfile would find it: importing tempfile would list its modules)
tmp = real(os.environ.get('TMPDIR') or '/tmp') + '/'
print('EXE\t' + sys.executable)    # first: the reasons below depend on it
total = original = 0
for f in sorted(files):
    kind, r = files[f], real(f)
    if f.startswith(copy + '/') or r.startswith(rcopy + '/'): continue
    if r == exe or os.path.basename(r).startswith(glibc) or r.startswith(('/proc/', '/dev/', '/sys/', '/etc/', '/usr/lib/locale/')) or '/gconv/' in r or not os.path.exists(f):
        continue
    g = holder(f, r)
    # scratch that the run made (Open MPI's shared memory segments in its
    # session directory), not a file of any tree
    if g is None and kind == 'shared object' and r.startswith(tmp) and '.so' not in os.path.basename(r):
        continue
    if g is None and kind == 'shared object' and f in boot: continue
    total += 1
    if g is None:
        print('OUTSIDE\t%s\t%s\tno tree of the manifest holds it' % (kind, f))
        continue
    if not os.path.exists(copy + g):
        why = 'missing from the copy: the tree\'s include or exclude leaves it out'
    elif kind == 'shared object':
        why = 'the copy has it: a DT_RPATH or RUNPATH, or a load by absolute path, outranks LD_LIBRARY_PATH'
    elif kind == 'module':
        why = 'the copy has it: a sys.path entry ahead of the copy found it first (a .pth file, a namespace package\'s __path__, or PYTHONPATH order)'
    else:
        why = 'the copy has it: opened by its original path (a path computed from an original location)'
    if kind == 'module': original += 1
    print('ORIGINAL\t%s\t%s\t%s' % (kind, f, why))
print('%d %d' % (total, original))
