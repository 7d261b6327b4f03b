# SPDX-License-Identifier: MIT
# glibc.py: put before scan.py and check.py.
#
# glibc's libraries, by the start of their names: scan never stages them
# (they must match the node's ld.so) and check does not report them.
glibc = ('libc.so', 'libc-', 'ld-linux', 'ld64.so', 'libm.so', 'libm-', 'libpthread',
         'libdl.so', 'libdl-', 'librt.so', 'librt-', 'libresolv', 'libutil.so', 'libnss_',
         'libanl', 'libmvec', 'libthread_db', 'libBrokenLocale', 'libmemusage',
         'libpcprofile')
