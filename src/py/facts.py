# SPDX-License-Identifier: MIT
# facts.py: stage-py runs this with a [python] section's interpreter (python -I -c)
# to learn what the environment is made of (pyenv.c).
#
# Prints one record a line (paths as bytes, none with a newline):
#   V X.Y        the version
#   X path       the real executable
#   T path       a standard library directory (sysconfig stdlib, platstdlib)
#   S path       an existing absolute sys.path entry, in order
#   L path       a libpython mapped from below sys.prefix or
#                sys.base_prefix (a shared build's)
import sys, os, sysconfig
r = os.path.realpath
out = sys.stdout.buffer
def put(k, p):
    if p and '\n' not in p: out.write(k.encode() + b' ' + os.fsencode(p) + b'\n')
put('V', '%d.%d' % sys.version_info[:2])
exe = r(sys.executable)
put('X', exe)
for k in ('stdlib', 'platstdlib'):
    p = sysconfig.get_path(k)
    if p and os.path.isdir(p): put('T', p)
for p in sys.path:
    if p and os.path.isabs(p) and os.path.exists(p): put('S', os.path.normpath(p))
pre = {r(sys.prefix), r(sys.base_prefix)}
for line in open('/proc/self/maps'):
    f = line.split(None, 5)
    if len(f) < 6 or not f[5].startswith('/'): continue
    p = f[5].rstrip('\n')
    if p.endswith(' (deleted)') or r(p) == exe: continue
    if os.path.basename(p).startswith('libpython') and \
       any(r(p).startswith(x + '/') for x in pre): put('L', p)
out.flush()
