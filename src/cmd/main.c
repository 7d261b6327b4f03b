/* SPDX-License-Identifier: MIT */
/*
 * stage-py: stage Python trees into every node's /dev/shm with MPI, and
 * print the environment settings that make the job import from there.
 *
 * main only parses the command line and runs the command.
 */
#include "config.h"

#include <errno.h>
#include <archive.h>
#include <getopt.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "bcast.h"
#include "bundle.h"
#include "chunk.h"
#include "conf.h"
#include "env.h"
#include "launch.h"
#include "manifest.h"
#include "log.h"
#include "node.h"
#include "cmd.h"
#include "util.h"
#include "watchdog.h"

static const char usage_text[] =
    "Usage: stage-py [stage] --manifest FILE | --bundle FILE [options]\n"
    "       stage-py list [--dest DIR] [--json]\n"
    "       stage-py clean [--manifest FILE | --all] [--older-than DURATION] [--job ID]\n"
    "                      [--all-users] [--dest DIR] [--dry-run]\n"
    "       stage-py pack --manifest FILE [--output BUNDLE] [--compress none|gzip|zstd|lz4]\n"
    "       stage-py scan --python PYTHON [--import MODULE...] [--script FILE...]\n"
    "                     [--whole-env] [--exclude PATTERN...] [--keep-tests]\n"
    "                     [--bundle FILE] [--name NAME] [--output FILE]\n"
    "       stage-py check --manifest FILE | --bundle FILE [--python PYTHON]\n"
    "                      --import MODULE...\n"
    "       stage-py config [--manifest FILE | --bundle FILE] [options of stage but\n"
    "                       --output, --stats and --shell]\n"
    "\n"
    "Stage the trees that FILE names into node-local memory on every node of\n"
    "the job, then print shell settings that put the staged copies first (for\n"
    "a whole Python environment, a [python] section: its interpreter, on PATH).\n"
    "Run it under the job's launcher, e.g. srun --ntasks-per-node=1 stage-py ...\n"
    "list shows this user's staged copies on every node it runs on; clean drops\n"
    "this job's pins there and removes the unpinned copies it selects.  pack\n"
    "writes the bundle of a manifest (from cron): a job then streams that one\n"
    "file instead of walking the trees.  scan writes the manifest of what some\n"
    "imports load; check, after staging, reports what they still load from\n"
    "outside the copy.  config prints the settings that staging would use, and\n"
    "where each came from (command line, manifest, bundle, site file, default).\n"
    "\n"
    "Options of stage:\n"
    "  -m, --manifest FILE     the manifest (see stage-py.ini(5)); this or --bundle\n"
    "      --bundle FILE       stage a bundle with the manifest it carries\n"
    "      --dest DIR          node-local root (default: the manifest's, else the\n"
    "                          site's, else /dev/shm)\n"
    "      --shell SHELL       settings for sh (default; bash, zsh, ksh, dash),\n"
    "                          csh (tcsh), fish, or json\n"
    "  -o, --output FILE       write the settings to FILE (only on success;\n"
    "                          a file is replaced atomically, a device or FIFO\n"
    "                          written in place; - is stdout) instead of stdout\n"
    "      --force             stage again even where a complete copy is present\n"
    "      --fallback-to-trees a bundle that cannot be used (missing, refused, not\n"
    "                          whole): stage from the trees, with a warning, instead\n"
    "                          of failing (damage found while streaming still fails)\n"
    "      --max-cache SIZE    cache budget: evict this user's least recently used\n"
    "                          unpinned copies to stay within SIZE (0: none)\n"
    "      --lock-wait DURATION\n"
    "                          wait at most this long for another run that is\n"
    "                          staging the same copy on a node (default 5m)\n"
    "      --chunk-size SIZE   bytes per broadcast message, K/M/G suffixes\n"
    "                          (default 256K; 4K to 1G)\n"
    "      --pipeline-depth N|auto\n"
    "                          chunks in flight, 1 to 64 (default auto: 4 + 4 x\n"
    "                          the trees' levels, within 64 MiB of chunks)\n"
    "      --broadcast ALGO    two-tree (default: full link speed at any node\n"
    "                          count) or binary (one tree, half the speed where\n"
    "                          links are the limit; for comparison)\n"
    "      --compress C        compress the stream from the trees: none (default:\n"
    "                          the site's, else none), lz4, zstd or gzip; pays on\n"
    "                          links slower than a core compresses (a bundle is\n"
    "                          streamed as it was packed)\n"
    "      --unpack-threads N|auto\n"
    "                          threads that write each node's copy, 1 to 64\n"
    "                          (default auto: one fewer than the CPUs the\n"
    "                          leader may use, from 1 to 4)\n"
    "      --headroom SIZE     memory to keep free beside the copy, in /dev/shm and\n"
    "                          under the job's memory cgroup (default 256M)\n"
    "      --on-node-failure abort|skip\n"
    "                          a node that fails stops the run (abort, default), or\n"
    "                          gets no copy while the others keep theirs (skip)\n"
    "      --timeout DURATION  give up after DURATION (90s, 5m, 1h; 0: never): every\n"
    "                          rank stops, naming the phase and the late nodes\n"
    "      --stats FILE        write timings and sizes as JSON to FILE\n"
    "Options of list and clean:\n"
    "      --dest DIR          node-local root (default: for clean --manifest the\n"
    "                          manifest's, else the site's, else /dev/shm)\n"
    "      --json              list: one JSON array instead of a table\n"
    "  -m, --manifest FILE     clean: the copies of this manifest's name\n"
    "      --all               clean: every copy of this user\n"
    "      --older-than DURATION\n"
    "                          clean: only copies last used longer ago than this\n"
    "      --job ID            clean: drop the pins of job ID (one that ended without\n"
    "                          its clean or an epilog) instead of this job's\n"
    "      --all-users         clean: root only: every user's copies on the node\n"
    "                          (an epilog or cron), each entered as that user;\n"
    "                          pins dropped only with --job\n"
    "      --dry-run           clean: say what would go; drop and remove nothing\n"
    "Options of pack:\n"
    "  -m, --manifest FILE     the manifest whose trees to pack; required\n"
    "  -o, --output BUNDLE     where (default: the manifest's 'bundle =', else\n"
    "                          NAME.bundle beside the manifest)\n"
    "      --compress C        none (default: the site's, else none), gzip, zstd\n"
    "                          or lz4\n"
    "Options of scan and check:\n"
    "      --python PYTHON     the interpreter (absolute path); scan: required;\n"
    "                          check: default the manifest's (for [python], the\n"
    "                          staged one)\n"
    "      --import MODULE     a module to import (repeat; at most 12 with --script);\n"
    "                          check: required; scan: this, --script or --whole-env\n"
    "      --script FILE       scan: the modules FILE imports (read, not run; dynamic\n"
    "                          imports are not seen: give them with --import)\n"
    "      --exclude PATTERN   scan: leave PATTERN out of every tree (repeat)\n"
    "      --keep-tests        scan: keep test suites (default: exclude tests/ test/)\n"
    "      --whole-env         scan: a [python] manifest of the interpreter's whole\n"
    "                          environment\n"
    "      --bundle FILE       scan: name FILE as the manifest's bundle\n"
    "      --name NAME         scan: the manifest's name (default: the first module,\n"
    "                          else the first script, with -env for --whole-env;\n"
    "                          else env)\n"
    "  -o, --output FILE       scan: write the manifest to FILE (atomically)\n"
    "  -m, --manifest FILE     check: the manifest that was staged; this or --bundle\n"
    "      --bundle FILE       check: the bundle that was staged, with the manifest\n"
    "                          it carries\n"
    "Common options:\n"
    "  -v, --verbose           progress on stderr (twice: debugging)\n"
    "  -q, --quiet             no warnings, only errors\n"
    "  -h, --help              this text\n"
    "  -V, --version           the version\n"
    "\n"
    "Site defaults and limits: " STG_SITE_CONF " (or $STAGE_PY_CONF); see\n"
    "stage-py.conf(5).\n"
    "Exit status: 0 success (staging: on every node, with skip on those that\n"
    "could); 1 failure; 2 bad command line, manifest, site file or output, or a\n"
    "launcher that did not make one MPI job (srun --mpi=pmix or pmi2); 3 timeout;\n"
    "70 a broken invariant (a bug: please report it).\n"
    "See stage-py(1).\n";

/* --version: stage-py's, and those of the libraries it runs with (inih's
 * as built: it has none at run time). */
static void print_version(void)
{
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(mpi, &len);
    mpi[strcspn(mpi, "\n")] = '\0';
    for (char *t = strchr(mpi, '\t'); t; t = strchr(t, '\t'))
        *t = ' ';               /* MPICH's "MPICH Version:<TAB>4.0.2" */
    unsigned x = XXH_versionNumber();
    printf("stage-py %s\nMPI: %s\nlibarchive: %s\nxxHash: %u.%u.%u\ninih: %s (built against)\n",
           PACKAGE_VERSION, mpi, archive_version_details(), x / 10000, x / 100 % 100, x % 100,
           STG_INIH_VERSION);
}

static void oom_abort(void)
{
    MPI_Abort(MPI_COMM_WORLD, STG_EINTERNAL);
}

/* The first command-line error; parsing goes on, so that --output and
 * --shell are known when deciding what stdout carries on failure. */
static char usage_error[512];

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
    if (usage_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(usage_error, sizeof usage_error, fmt, ap);
    va_end(ap);
}

/* A number from 1 to 64 for option opt, into out, or the word auto if
 * given (then 0); else a usage error. */
static void small_number(const char *opt, const char *arg, int *out, const char *autoword)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (autoword && strcmp(arg, autoword) == 0)
        *out = 0;
    else if (*end || end == arg || v < 1 || v > 64)
        bad("%s '%s': give a number from 1 to 64%s%s", opt, arg, autoword ? ", or " : "",
            autoword ? autoword : "");
    else
        *out = (int)v;
}

/* A dotted module name: identifiers separated by '.'. */
static bool valid_module(const char *s)
{
    bool start = true;
    for (; *s; s++) {
        if (*s == '.' && !start) {
            start = true;
            continue;
        }
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
              (!start && *s >= '0' && *s <= '9')))
            return false;
        start = false;
    }
    return !start;
}

/* An output that is one of the inputs would replace it (cp a a refuses
 * too): the manifest, a bundle, a script, the site file, or the other
 * output. */
static void same_file_check(const struct stg_opts *o)
{
    struct named { const char *what, *path; };
    const char *conf = getenv("STAGE_PY_CONF");
    struct named in[STG_IMPORTS_MAX + 4] = {
        {"the manifest (--manifest)", o->manifest},
        /* scan --bundle names the manifest's bundle, which pack will write */
        {"the bundle (--bundle)", o->bundle},
        {"the site file", conf && *conf ? conf : STG_SITE_CONF},
        {"the file of --stats", o->stats},
    };
    size_t n = 4;
    for (size_t i = 0; i < o->scripts.n && n < sizeof in / sizeof in[0]; i++)
        in[n++] = (struct named){"a script (--script)", o->scripts.v[i]};
    /* two outputs: one file also when it does not exist yet (the later
     * rename would win); a device (/dev/null) or a FIFO takes both */
    struct stat st;
    if (o->output && o->stats && (stat(o->output, &st) < 0 || S_ISREG(st.st_mode)) &&
        !stg_path_same_file(o->output, o->stats) && stg_path_same_place(o->output, o->stats))
        bad("--output '%s' is the file of --stats: it would be replaced; give another file",
            o->output);
    const struct named out[2] = {{"--output", o->output}, {"--stats", o->stats}};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < n; i++)
            if (out[k].path && in[i].path != out[k].path &&
                stg_path_same_file(out[k].path, in[i].path))
                bad("%s '%s' is %s: it would be replaced; give another file",
                    out[k].what, out[k].path, in[i].what);
}

/* Which commands an option belongs to. */
#define C_STAGE (1u << STG_CMD_STAGE)
#define C_LIST (1u << STG_CMD_LIST)
#define C_CLEAN (1u << STG_CMD_CLEAN)
#define C_PACK (1u << STG_CMD_PACK)
#define C_SCAN (1u << STG_CMD_SCAN)
#define C_CHECK (1u << STG_CMD_CHECK)
#define C_CONFIG (1u << STG_CMD_CONFIG)
#define C_ALL (C_STAGE | C_LIST | C_CLEAN | C_PACK | C_SCAN | C_CHECK | C_CONFIG)
#define NCMD 7

static const char *const command_names[NCMD] = {"stage", "list", "clean", "pack", "scan",
                                                "check", "config"};

/* Parse argv into o.  Returns -1 to go on, else the exit status; rank 0
 * (speak) prints the error. */
static int parse(int argc, char **argv, struct stg_opts *o, bool speak)
{
    enum { OPT_DEST = 256, OPT_SHELL, OPT_CHUNK, OPT_DEPTH, OPT_STATS, OPT_HEADROOM, OPT_FAILURE,
           OPT_TIMEOUT, OPT_FORCE, OPT_MAX_CACHE, OPT_LOCK_WAIT, OPT_JSON, OPT_ALL,
           OPT_OLDER, OPT_DRY, OPT_JOB, OPT_COMPRESS, OPT_FALLBACK, OPT_PYTHON, OPT_IMPORT,
           OPT_NAME, OPT_UNPACK_THREADS, OPT_ALL_USERS, OPT_BROADCAST, OPT_SCRIPT, OPT_EXCLUDE,
           OPT_KEEP_TESTS, OPT_WHOLE_ENV, OPT_BUNDLE };
    static const struct option longopts[] = {
        {"manifest", required_argument, NULL, 'm'},
        {"dest", required_argument, NULL, OPT_DEST},
        {"shell", required_argument, NULL, OPT_SHELL},
        {"output", required_argument, NULL, 'o'},
        {"chunk-size", required_argument, NULL, OPT_CHUNK},
        {"pipeline-depth", required_argument, NULL, OPT_DEPTH},
        {"broadcast", required_argument, NULL, OPT_BROADCAST},
        {"unpack-threads", required_argument, NULL, OPT_UNPACK_THREADS},
        {"stats", required_argument, NULL, OPT_STATS},
        {"headroom", required_argument, NULL, OPT_HEADROOM},
        {"on-node-failure", required_argument, NULL, OPT_FAILURE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"force", no_argument, NULL, OPT_FORCE},
        {"max-cache", required_argument, NULL, OPT_MAX_CACHE},
        {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"all", no_argument, NULL, OPT_ALL},
        {"all-users", no_argument, NULL, OPT_ALL_USERS},
        {"older-than", required_argument, NULL, OPT_OLDER},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {"job", required_argument, NULL, OPT_JOB},
        {"compress", required_argument, NULL, OPT_COMPRESS},
        {"fallback-to-trees", no_argument, NULL, OPT_FALLBACK},
        {"python", required_argument, NULL, OPT_PYTHON},
        {"import", required_argument, NULL, OPT_IMPORT},
        {"name", required_argument, NULL, OPT_NAME},
        {"script", required_argument, NULL, OPT_SCRIPT},
        {"exclude", required_argument, NULL, OPT_EXCLUDE},
        {"keep-tests", no_argument, NULL, OPT_KEEP_TESTS},
        {"whole-env", no_argument, NULL, OPT_WHOLE_ENV},
        {"bundle", required_argument, NULL, OPT_BUNDLE},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    /* The first option given that each command does not take. */
    char not_for[NCMD][32] = {"", "", "", "", "", "", ""};
    int verbosity = STG_NORMAL, c;
    bool help = false, version = false, output_dash = false;
    opterr = 0;
    int li = -1;
    while ((c = getopt_long(argc, argv, ":m:o:vqhV", longopts, &li)) != -1) {
        /* the option's name, also when its value came as the next word */
        char name[32];
        if (li >= 0)
            snprintf(name, sizeof name, "--%s", longopts[li].name);
        else
            snprintf(name, sizeof name, "-%c", c);
        li = -1;
        unsigned takes = C_STAGE;   /* most options are staging's */
        switch (c) {
        case 'm': o->manifest = optarg; takes = C_STAGE | C_CLEAN | C_PACK | C_CHECK; break;
        case OPT_PYTHON:
            takes = C_SCAN | C_CHECK;
            if (optarg[0] != '/')
                bad("--python '%s': give the interpreter's absolute path", optarg);
            else if (access(optarg, X_OK) < 0)
                bad("--python '%s': %s", optarg, strerror(errno));
            o->python = optarg;
            break;
        case OPT_IMPORT:
            takes = C_SCAN | C_CHECK;
            if (!valid_module(optarg))
                bad("--import '%s': not a module name (such as numpy or dolfin.fem)", optarg);
            else if (o->imports.n + o->scripts.n >= STG_IMPORTS_MAX)
                bad("--import: at most %d modules and scripts in all", STG_IMPORTS_MAX);
            else
                stg_strv_push(&o->imports, optarg);
            break;
        case OPT_SCRIPT: {
            takes = C_SCAN;
            struct stat st;
            char *path = stg_path_absolute(optarg);
            if (!path || stat(path, &st) < 0)
                bad("--script '%s': %s", optarg, path ? strerror(errno) : "the name is empty");
            else if (!S_ISREG(st.st_mode))
                bad("--script '%s': not a regular file", optarg);
            else if (o->imports.n + o->scripts.n >= STG_IMPORTS_MAX)
                bad("--script: at most %d modules and scripts in all", STG_IMPORTS_MAX);
            else if (strchr(path, '\n'))
                bad("--script '%s': a newline in the name", optarg);
            else
                stg_strv_push(&o->scripts, path);
            free(path);
            break;
        }
        case OPT_EXCLUDE:
            takes = C_SCAN;
            /* a manifest's list is words; "#" and ";" would start a comment */
            if (!*optarg || strpbrk(optarg, " \t\n#;"))
                bad("--exclude '%s': a pattern without blanks, '#' or ';'", optarg);
            else
                stg_strv_push(&o->excludes, optarg);
            break;
        case OPT_KEEP_TESTS: o->keep_tests = true; takes = C_SCAN; break;
        case OPT_WHOLE_ENV: o->whole_env = true; takes = C_SCAN; break;
        case OPT_BUNDLE:
            takes = C_STAGE | C_SCAN | C_CHECK;
            free(o->bundle);
            o->bundle = stg_path_absolute(optarg);
            if (!o->bundle)
                bad("--bundle: the file name is empty");
            else if (strpbrk(o->bundle, "\n;#") || o->bundle[strlen(o->bundle) - 1] == ' ')
                bad("--bundle '%s': a manifest cannot hold that name", optarg);
            break;
        case OPT_NAME:
            takes = C_SCAN;
            if (!stg_manifest_valid_name(optarg))
                bad("--name '%s': use letters, digits, '.', '_' and '-'", optarg);
            o->name = optarg;
            break;
        case OPT_COMPRESS:
            takes = C_STAGE | C_PACK;
            if (stg_parse_compress(optarg, &o->compress) < 0)
                bad("--compress '%s': use " STG_COMPRESS_CHOICES, optarg);
            break;
        case OPT_FALLBACK: o->fallback_to_trees = true; break;
        case OPT_DEST:
            takes = C_STAGE | C_LIST | C_CLEAN;
            if (!stg_path_is_clean_absolute(stg_path_strip_slash(optarg)))
                bad("--dest '%s': not a clean absolute path", optarg);
            else if (!stg_path_listable(optarg))
                bad("--dest '%s': a ':' or a newline cannot stand in a path list", optarg);
            o->dest = optarg;
            break;
        case OPT_SHELL:
            if (stg_env_shell_parse(optarg, &o->shell) < 0)
                bad("--shell '%s': use sh, csh, fish or json", optarg);
            break;
        case 'o':
            takes = C_STAGE | C_PACK | C_SCAN;
            free(o->output);
            /* "-": standard output, as for every Unix tool */
            o->output = strcmp(optarg, "-") == 0 ? NULL : stg_path_absolute(optarg);
            if (!o->output && strcmp(optarg, "-") != 0)
                bad("--output: the file name is empty");
            output_dash = !o->output;
            break;
        case OPT_STATS:
            free(o->stats);
            o->stats = stg_path_absolute(optarg);
            if (!o->stats)
                bad("--stats: the file name is empty");
            if (strcmp(optarg, "-") == 0)
                bad("--stats -: standard output carries the settings; give a file");
            break;
        case OPT_CHUNK:
            if (stg_parse_size(optarg, &o->chunk_size) < 0 || o->chunk_size < STG_CHUNK_MIN ||
                o->chunk_size > STG_CHUNK_MAX)
                bad("--chunk-size '%s': give a size from 4K to 1G", optarg);
            o->given |= STG_GIVEN_CHUNK;
            break;
        case OPT_HEADROOM:
            if (stg_parse_size(optarg, &o->headroom) < 0)
                bad("--headroom '%s': give a size such as 256M or 0", optarg);
            o->headroom_set = true;
            break;
        case OPT_MAX_CACHE:
            if (stg_parse_size(optarg, &o->max_cache) < 0)
                bad("--max-cache '%s': give a size such as 8G, or 0 for no budget", optarg);
            o->max_cache_set = true;
            break;
        case OPT_TIMEOUT:
            if (stg_parse_duration(optarg, &o->timeout) < 0)
                bad("--timeout '%s': give a duration such as 90s, 5m or 1h", optarg);
            break;
        case OPT_LOCK_WAIT:
            if (stg_parse_duration(optarg, &o->lock_wait) < 0)
                bad("--lock-wait '%s': give a duration such as 90s, 5m or 1h", optarg);
            break;
        case OPT_OLDER:
            takes = C_CLEAN;
            if (stg_parse_duration(optarg, &o->older_than) < 0)
                bad("--older-than '%s': give a duration such as 12h or 7d", optarg);
            break;
        case OPT_FORCE: o->force = true; break;
        case OPT_JSON: o->json = true; takes = C_LIST; break;
        case OPT_ALL: o->all = true; takes = C_CLEAN; break;
        case OPT_ALL_USERS: o->all_users = true; takes = C_CLEAN; break;
        case OPT_DRY: o->dry_run = true; takes = C_CLEAN; break;
        case OPT_JOB:
            takes = C_CLEAN;
            if (!stg_manifest_valid_name(optarg))
                bad("--job '%s': give a job id (letters, digits, '.', '_', '-')", optarg);
            o->job = optarg;
            break;
        case OPT_FAILURE:
            if (strcmp(optarg, "abort") == 0)
                o->skip_failed = false;
            else if (strcmp(optarg, "skip") == 0)
                o->skip_failed = true;
            else
                bad("--on-node-failure '%s': use abort or skip", optarg);
            o->given |= STG_GIVEN_FAILURE;
            break;
        case OPT_DEPTH:
            small_number("--pipeline-depth", optarg, &o->depth, "auto");
            o->given |= STG_GIVEN_DEPTH;
            break;
        case OPT_BROADCAST:
            if (stg_bcast_algo_parse(optarg, &o->algo) < 0)
                bad("--broadcast '%s': use two-tree or binary", optarg);
            o->given |= STG_GIVEN_ALGO;
            break;
        case OPT_UNPACK_THREADS:
            small_number("--unpack-threads", optarg, &o->unpack_threads, "auto");
            o->given |= STG_GIVEN_THREADS;
            break;
        case 'v':
            verbosity = verbosity < STG_NORMAL ? STG_NORMAL : verbosity + 1;
            takes = C_ALL;
            break;
        case 'q': verbosity = STG_QUIET; takes = C_ALL; break;
        case 'h': help = true; takes = C_ALL; break;
        case 'V': version = true; takes = C_ALL; break;
        case ':': bad("option '%s' needs a value (see --help)", argv[optind - 1]); break;
        default: bad("unknown option '%s' (see --help)", argv[optind - 1]); break;
        }
        /* config: what staging with the same options would use */
        if ((takes & C_STAGE) && c != 'o' && c != OPT_STATS && c != OPT_SHELL)
            takes |= C_CONFIG;
        for (int k = 0; k < NCMD; k++)
            if (!(takes & (1u << k)) && !not_for[k][0])
                snprintf(not_for[k], sizeof not_for[k], "%s", name);
    }
    stg_log_init(NULL, verbosity);
    if (help || version) {
        if (speak && help)
            fputs(usage_text, stdout);
        else if (speak)
            print_version();
        return STG_OK;
    }
    o->cmd = STG_CMD_STAGE;
    if (optind < argc) {
        for (int k = 0; k < NCMD; k++)
            if (strcmp(argv[optind], command_names[k]) == 0) {
                o->cmd = (enum stg_command)k;
                optind++;
                break;
            }
    }
    if (optind < argc)
        bad("unknown command or argument '%s' (see --help)", argv[optind]);
    if (not_for[o->cmd][0])
        bad("%s: not an option of '%s' (see --help)", not_for[o->cmd], command_names[o->cmd]);
    if (o->cmd == STG_CMD_PACK && output_dash)
        bad("pack --output -: a bundle is not written to standard output; give a file");
    if ((o->cmd == STG_CMD_STAGE || o->cmd == STG_CMD_CONFIG || o->cmd == STG_CMD_CHECK) &&
        o->manifest && o->bundle)
        bad("give --manifest FILE or --bundle FILE, not both (a bundle carries its manifest)");
    if (o->cmd == STG_CMD_STAGE && !o->manifest && !o->bundle)
        bad("no manifest: give --manifest FILE, or --bundle FILE (see --help)");
    if (o->cmd == STG_CMD_PACK && !o->manifest)
        bad("no manifest: give --manifest FILE (see --help)");
    if (o->cmd == STG_CMD_CHECK && !o->manifest && !o->bundle)
        bad("no manifest: give --manifest FILE, or --bundle FILE (see --help)");
    if (o->cmd == STG_CMD_SCAN && (!o->python || (!o->imports.n && !o->scripts.n && !o->whole_env)))
        bad("scan: give --python PYTHON and at least one --import MODULE or --script FILE "
            "(or --whole-env)");
    if (o->cmd == STG_CMD_CHECK && !o->imports.n)
        bad("check: give at least one --import MODULE");
    if (o->cmd == STG_CMD_CLEAN && o->manifest && o->all)
        bad("clean: give --manifest FILE or --all, not both");
    if (o->all_users && geteuid() != 0)
        bad("clean --all-users: only root may clean other users' copies");
    same_file_check(o);
    if (usage_error[0]) {
        if (speak)
            stg_log_error("%s", usage_error);
        return STG_EUSAGE;
    }
    return -1;
}

/* Every rank parsed the same words, but some checks look at files (a
 * --script, a --python, an output that is an input), which nodes may see
 * differently: all ranks take the lowest rank's usage error, which the
 * root prints (its own it has printed already), so that none goes on into
 * a collective that the others have left. */
static int agree_on_usage(int rc, int rank, int world)
{
    int mine = rc == STG_EUSAGE ? rank : world, first = world;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == world)
        return rc;
    char msg[sizeof usage_error];
    memcpy(msg, usage_error, sizeof msg);
    MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD);
    msg[sizeof msg - 1] = '\0';
    if (rank == 0 && first != 0)
        stg_log_error("rank %d: %s", first, msg);
    return STG_EUSAGE;
}

/* Whether a staging's settings would go to stdout: no --output, no other
 * command.  (A look at argv before it is parsed, for a launcher that did
 * not make one MPI job.) */
static bool settings_on_stdout(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if ((strncmp(a, "-o", 2) == 0 && strcmp(a, "-o-") != 0 &&
             !(strcmp(a, "-o") == 0 && i + 1 < argc && strcmp(argv[i + 1], "-") == 0)) ||
            (strncmp(a, "--output", 8) == 0 && strcmp(a, "--output=-") != 0 &&
             !(strcmp(a, "--output") == 0 && i + 1 < argc && strcmp(argv[i + 1], "-") == 0)))
            return false;
        for (int k = 1; k < NCMD; k++)
            if (strcmp(a, command_names[k]) == 0)
                return false;
    }
    return true;
}

static const char *env(const char *name)
{
    return getenv(name);
}

/* The launcher did not make one MPI job (see launch.h): every task exits
 * with status 2; one of them says why, and makes an eval of stdout fail. */
static int launch_mismatch(int argc, char **argv, const char *msg)
{
    if (stg_launch_speaks(env)) {
        fprintf(stderr, "stage-py: %s\n", msg);
        if (settings_on_stdout(argc, argv))
            fputs("false\n", stdout);
    }
    return STG_EUSAGE;
}

int main(int argc, char **argv)
{
    int provided = 0;
    char library[MPI_MAX_LIBRARY_VERSION_STRING] = "", msg[STG_MSG_MAX];
    int liblen = 0;
    MPI_Get_library_version(library, &liblen);     /* allowed before MPI_Init */
    /* Before MPI_Init: Open MPI would fail in it with text of its own, and
     * MPICH would make every task a job of its own. */
    if (stg_launch_check(env, 0, library, msg, sizeof msg))
        return launch_mismatch(argc, argv, msg);
    /* FUNNELED: only the main thread calls MPI; pack and unpack threads never do. */
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fputs("stage-py: MPI_Init_thread failed\n", stderr);
        return STG_EFAIL;
    }
    stg_oom_hook = oom_abort;
    int rank = 0, world = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    /* After it: the job MPI made must be the one the launcher started. */
    if (stg_launch_check(env, world, library, msg, sizeof msg)) {
        int rc = launch_mismatch(argc, argv, msg);
        MPI_Finalize();
        return rc;
    }
    struct stg_opts o = {
        .shell = STG_SHELL_SH, .chunk_size = STG_DEFAULT_CHUNK, .depth = STG_DEFAULT_DEPTH,
        .unpack_threads = STG_DEFAULT_UNPACK_THREADS,
        .headroom = STG_DEFAULT_HEADROOM, .timeout = -1, .lock_wait = -1, .older_than = -1,
    };
    int rc = parse(argc, argv, &o, rank == 0);
    rc = agree_on_usage(rc, rank, world);
    if (rc < 0 && provided < MPI_THREAD_FUNNELED) {
        if (rank == 0)
            stg_log_error("the MPI library gives no thread support (MPI_THREAD_FUNNELED)");
        rc = STG_EFAIL;
    }
    if (rc < 0) {
        struct stg_node n;
        struct stg_watchdog w;
        stg_node_init(&n);
        stg_watchdog_init(&w, &n);
        stg_log_init(n.name, stg_log_verbosity());
        if (o.cmd == STG_CMD_LIST)
            rc = stg_cmd_list(&o, &n, &w);
        else if (o.cmd == STG_CMD_CLEAN)
            rc = stg_cmd_clean(&o, &n, &w);
        else if (o.cmd == STG_CMD_PACK)
            rc = stg_cmd_pack(&o, &n, &w);
        else if (o.cmd == STG_CMD_SCAN)
            rc = stg_cmd_scan(&o, &n, &w);
        else if (o.cmd == STG_CMD_CHECK)
            rc = stg_cmd_check(&o, &n, &w);
        else if (o.cmd == STG_CMD_CONFIG)
            rc = stg_cmd_config(&o, &n, &w);
        else
            rc = stg_cmd_stage(&o, &n, &w);
        stg_watchdog_fini(&w);
        stg_node_fini(&n);
    } else if (rc != STG_OK && rank == 0 && !o.output && o.cmd == STG_CMD_STAGE) {
        fputs(stg_env_failure(o.shell), stdout);
    }
    free(o.output);
    free(o.stats);
    stg_strv_free(&o.imports);
    stg_strv_free(&o.scripts);
    stg_strv_free(&o.excludes);
    free(o.bundle);
    /* stdout carries the settings: a failed write must not pass unnoticed. */
    if (fclose(stdout) != 0 && rc == STG_OK) {
        stg_log_error("cannot write to stdout");
        rc = STG_EFAIL;
    }
    MPI_Finalize();
    return rc;
}
