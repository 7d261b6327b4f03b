# SPDX-License-Identifier: MIT
# scan.py: stage-py scan runs this (after glibc.py) with --python, to find what
# the imports load.
#
# argv[1:]: the modules to import, and scripts (absolute paths), whose
# imports are found with ast, without running them, and imported in turn
# (one that fails is a warning: optional and local imports are common).
# Prints, one record a line:
#   V version           X executable
#   E prefix            sys.prefix, for a [python] section
#   P entry\tname...    a sys.path entry (in sys.path order) and the
#                       top-level names under it that the job needs
#   L dir\tname...      a directory of shared libraries that were mapped:
#                       lib*.so* only, which the loader finds by name (so
#                       LD_LIBRARY_PATH can lead it to the copy); plugins
#                       that are opened by absolute path (Open MPI's mca_*,
#                       hwloc's) could not be, and glibc must match ld.so
#   T name              a loaded module lives in a directory of that name
#                       (tests, test): a test suite the job imports
#   W text              a warning
import sys, os, re, ast, importlib, importlib.metadata
real = os.path.realpath

def script_imports(path):
    """(line, module) for every absolute import in the script at path."""
    tree = ast.parse(open(path, 'rb').read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == '__future__':
                continue
            found.append((node.lineno, node.module))
            # "from pkg import sub" may name a submodule
            found += [(node.lineno, node.module + '.' + a.name) for a in node.names
                      if a.name != '*']
    return sorted(set(found))

local = set()   # directories of the scripts: the job's own code
for m in sys.argv[1:]:
    if '/' not in m:
        importlib.import_module(m)
        continue
    d = os.path.dirname(m)
    if d not in sys.path:
        sys.path.append(d)  # as python3 script.py has it, but last
    local.add(real(d))
    for line, name in script_imports(m):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            # "from pkg import function": not a module, and no error
            if e.name != name or '.' not in name:
                print('W %s:%d: import %s: %s: left out' % (m, line, name, e))
        except Exception as e:
            print('W %s:%d: import %s failed (%s: %s): left out' % (m, line, name,
                  type(e).__name__, e))
print('V %d.%d.%d' % sys.version_info[:3])
print('X ' + sys.executable)
print('E ' + sys.prefix)
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
suites = set()
exe = real(sys.executable)
# sys.path's '' (python -c): the directory scan runs in, which a job does not
cwd = real(os.getcwd()) if '' in sys.path else None
here = set()
for f in files | mapped:
    o = owner(f) or owner(real(f))
    if o:
        e, ef = o
        g = f if f.startswith(ef + '/') else real(f)
        parts = g[len(ef) + 1:].split('/')
        if parts[0]: used[e].add(parts[0])
        suites.update(p for p in parts[:-1] if p in ('tests', 'test'))
    elif cwd and f in files and real(f).startswith(cwd + '/'):
        # a module (not a mapped library: the L records take those)
        here.add(real(f)[len(cwd) + 1:].split('/')[0])
    elif f in mapped:
        r = real(f)
        b = os.path.basename(r)
        if r == exe or b.startswith(glibc) or not re.match(r'lib.*[.]so([.]|$)', b) or r.startswith(('/dev/', '/proc/', '/sys/', '/run/', '/tmp/', '/var/', '/usr/lib/locale/')) or '/gconv/' in r:
            continue
        libs.setdefault(os.path.dirname(r), set()).add(b)
for t in sorted(suites):
    print('T ' + t)
if here:
    print("W %s: %s: imported from the directory scan runs in, which is not staged: run "
          "scan from a directory without modules of these names" % (cwd, ' '.join(sorted(here))))

def pth_needed(e, pth, names):
    """Whether a .pth file of entry e matters to what was imported: a path
    it adds is an entry that something was imported from, or an import
    line of it names an imported top-level module."""
    tops = {n.split('.')[0] for n in names}
    try: lines = open(os.path.join(e, pth), encoding='utf-8', errors='replace').read().splitlines()
    except OSError: return False
    for line in lines:
        line = line.strip()
        if not line or line.startswith('#'): continue
        if line.startswith(('import ', 'import\t')):
            if tops & set(re.findall(r'[A-Za-z_][A-Za-z0-9_]*', line)): return True
            continue
        p = real(os.path.join(e, line))
        if any(real(x) == p and used[x] for x in entries): return True
    return False

pd = importlib.metadata.packages_distributions()
for e in entries:
    names = used[e]
    if not names: continue
    if real(e) in local:
        print("W %s: %s: the job's own code, beside its script: not staged" % (e, ' '.join(sorted(names))))
        continue
    for top in list(names):
        mod = top.split('.')[0]
        if os.path.isdir(os.path.join(e, mod + '.libs')): names.add(mod + '.libs')
        for d in pd.get(mod, []):
            try: p = importlib.metadata.distribution(d)._path
            except Exception: continue
            if p and real(str(p.parent)) == real(e): names.add(p.name)
    names.update(n for n in os.listdir(e) if n.endswith('.pth') and pth_needed(e, n, names))
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
