/* SPDX-License-Identifier: MIT */
/*
 * t-space: the table of file-system types that a destination may not be on.
 */
#include "config.h"

#include <string.h>

#include "space.h"
#include "tap.h"

static void type_is(unsigned long magic, const char *name, bool shared)
{
    bool s = !shared;
    const char *got = stg_space_fs_name(magic, &s);
    ok(strcmp(got, name) == 0 && s == shared, "0x%lx: %s, %s (got %s)", magic, name,
       shared ? "shared" : "node-local", got);
}

int main(void)
{
    type_is(0x01021994, "tmpfs", false);
    type_is(0xEF53, "ext4", false);
    type_is(0x58465342, "xfs", false);
    type_is(0x6969, "nfs", true);
    type_is(0x0BD00BD0, "lustre", true);
    type_is(0x47504653, "gpfs", true);
    type_is(0x19830326, "beegfs", true);
    type_is(0x00C36400, "ceph", true);
    type_is(0xFF534D42, "cifs", true);
    type_is(0xFE534D42, "smb2", true);
    type_is(0xAAD7AAEA, "panfs", true);
    type_is(0x01021997, "9p", true);
    type_is(0x65735546, "fuse", true);
    type_is(0x5346414F, "afs", true);
    type_is(0x12345678, "unknown", false);
    /* f_type is a signed long: a magic with its top bit set may come
     * sign-extended */
    type_is((unsigned long)(long)(int)0xFF534D42, "cifs", true);
    ok(stg_space_fs_shared_name("nfs", 3) && stg_space_fs_shared_name("fuse x", 4),
       "allow_fs names: nfs, fuse");
    ok(!stg_space_fs_shared_name("tmpfs", 5) && !stg_space_fs_shared_name("fsue", 4),
       "... not tmpfs (never refused), not a typo");
    ok(stg_space_local_check("/", "") == 0, "the root file system of this machine is local");
    return done_testing();
}
