/* SPDX-License-Identifier: MIT */
/* Unit tests: include and exclude patterns. */
#include "config.h"

#include "match.h"
#include "tap.h"

static struct stg_strv list(const char *words)
{
    struct stg_strv sv = {0};
    stg_strv_split(&sv, words);
    return sv;
}

int main(void)
{
    struct stg_strv none = {0};
    ok(stg_match_include(&none, "anything"), "an empty include takes everything");

    struct stg_strv inc = list("sympy ufl ffc* numpy");
    ok(stg_match_include(&inc, "sympy"), "include by name");
    ok(stg_match_include(&inc, "ffc-2019.1.0.egg-info"), "include by glob");
    ok(!stg_match_include(&inc, "scipy"), "a name not listed is left out");
    ok(!stg_match_include(&inc, "sympy2"), "names match whole");
    stg_strv_free(&inc);

    struct stg_strv ex = list("tests *.orig __pycache__/ doc/*.txt /top.py");
    ok(stg_match_exclude(&ex, "tests", true), "a name at the top");
    ok(stg_match_exclude(&ex, "numpy/core/tests", true), "a name at any depth");
    ok(!stg_match_exclude(&ex, "numpy/core/tests.py", false), "a name matches whole");
    ok(stg_match_exclude(&ex, "a/b/c.orig", false), "a glob on the name at any depth");
    ok(stg_match_exclude(&ex, "a/__pycache__", true), "a directory-only pattern takes a directory");
    ok(!stg_match_exclude(&ex, "a/__pycache__", false), "... and not a file of that name");
    ok(stg_match_exclude(&ex, "doc/readme.txt", false), "a pattern with / matches the relative path");
    ok(!stg_match_exclude(&ex, "x/doc/readme.txt", false), "... only from the tree's source");
    ok(!stg_match_exclude(&ex, "doc/sub/readme.txt", false), "* stays within one component");
    ok(stg_match_exclude(&ex, "top.py", false), "a leading / anchors");
    ok(!stg_match_exclude(&ex, "pkg/top.py", false), "... to the tree's source");
    ok(!stg_match_exclude(&ex, "numpy/core/multiarray.so", false), "other entries stay");
    stg_strv_free(&ex);

    ok(stg_match_is_glob("a*"), "globs are recognised");
    ok(!stg_match_is_glob("sympy"), "plain names are not globs");
    return done_testing();
}
