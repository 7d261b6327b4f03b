# SPDX-License-Identifier: MIT
# compile.py: stage-py pack runs this with the manifest's interpreter (python -I -c),
# as the environment's owner where that is not root (SECURITY in stage-py(1)),
# to compile the bytecode of the copy.
#
# argv[1]: a list of "F\tindex\tsource\tarchive path" (a .py, index: its
# entry) and "P\tarchive path" (a .pyc the copy has); argv[2]: where new
# .pyc files go.  Prints the interpreter's version, then "index\tarchive
# path" for each new .pyc, and "E\tsource\terror" for each that failed.
import sys, os, importlib.util, py_compile
lst, out = sys.argv[1], sys.argv[2]
tag = sys.implementation.cache_tag
print('%d.%d' % sys.version_info[:2])
have, todo = set(), []
for line in open(lst, encoding='utf-8', errors='surrogateescape'):
    f = line.rstrip('\n').split('\t')
    (have.add(f[1]) if f[0] == 'P' else todo.append((f[1], f[2], f[3])))
def fresh(src, rel):
    # the copy has the .pyc that the source's own __pycache__ holds: is it current?
    if rel not in have: return False
    try:
        with open(importlib.util.cache_from_source(src), 'rb') as f: h = f.read(16)
        st = os.stat(src)
    except OSError: return False
    if len(h) < 16 or h[:4] != importlib.util.MAGIC_NUMBER: return False
    if int.from_bytes(h[4:8], 'little') & 1: return True
    return (int.from_bytes(h[8:12], 'little') == int(st.st_mtime) & 0xffffffff and
            int.from_bytes(h[12:16], 'little') == st.st_size & 0xffffffff)
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for i, src, apath in todo:
    d, base = os.path.split(apath)
    rel = os.path.join(d, '__pycache__', base[:-3] + '.' + tag + '.pyc')
    if fresh(src, rel): continue
    try:
        py_compile.compile(src, cfile=os.path.join(out, rel), dfile=src, doraise=True,
                           invalidation_mode=mode)
    except Exception as e:
        print('E\t%s\t%s' % (src, str(e).replace('\n', ' ')))
        continue
    print(i + '\t' + rel)
