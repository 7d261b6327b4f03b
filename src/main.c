/* SPDX-License-Identifier: MIT */
/*
 * stage-py: stage Python trees into every node's /dev/shm with MPI, and
 * print the environment settings that make the job import from there.
 *
 * main only parses the command line and runs the command.
 */
#include "config.h"

#include <getopt.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcast.h"
#include "env.h"
#include "log.h"
#include "node.h"
#include "stage.h"
#include "util.h"

static const char usage_text[] =
    "Usage: stage-py [stage] --manifest FILE [options]\n"
    "\n"
    "Stage the trees that FILE names into node-local memory on every node of\n"
    "the job, then print shell settings that put the staged copies first.\n"
    "Run it under the job's launcher, e.g. srun --ntasks-per-node=1 stage-py ...\n"
    "\n"
    "Options:\n"
    "  -m, --manifest FILE     the manifest (see stage-py.ini(5)); required\n"
    "      --dest DIR          node-local root (default: the manifest's, else /dev/shm)\n"
    "      --shell SHELL       settings for sh (default; bash, zsh, ksh, dash),\n"
    "                          csh (tcsh), fish, or json\n"
    "  -o, --output FILE       write the settings to FILE (atomically, only on\n"
    "                          success) instead of stdout\n"
    "      --chunk-size SIZE   bytes per broadcast message, K/M/G suffixes\n"
    "                          (default 4M; 4K to 1G)\n"
    "      --pipeline-depth N  broadcasts in flight (default 4; 1 to 64)\n"
    "      --headroom SIZE     memory to keep free beside the copy, in /dev/shm and\n"
    "                          under the job's memory cgroup (default 256M)\n"
    "      --on-node-failure abort|skip\n"
    "                          a node that fails stops the run (abort, default), or\n"
    "                          gets no copy while the others keep theirs (skip)\n"
    "      --timeout DURATION  give up after DURATION (90s, 5m, 1h; 0: never): every\n"
    "                          rank stops, naming the phase and the late nodes\n"
    "      --stats FILE        write timings and sizes as JSON to FILE\n"
    "  -v, --verbose           progress on stderr (twice: debugging)\n"
    "  -q, --quiet             no warnings, only errors\n"
    "  -h, --help              this text\n"
    "  -V, --version           the version\n"
    "\n"
    "Exit status: 0 staged on every node (with skip: on those that could); 1\n"
    "staging failed; 2 bad command line or manifest; 3 timeout.  See stage-py(1).\n";

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

/* Parse argv into o.  Returns -1 to go on, else the exit status; rank 0
 * (speak) prints the error. */
static int parse(int argc, char **argv, struct stg_opts *o, bool speak)
{
    enum { OPT_DEST = 256, OPT_SHELL, OPT_CHUNK, OPT_DEPTH, OPT_STATS, OPT_HEADROOM, OPT_FAILURE,
           OPT_TIMEOUT };
    static const struct option longopts[] = {
        {"manifest", required_argument, NULL, 'm'},
        {"dest", required_argument, NULL, OPT_DEST},
        {"shell", required_argument, NULL, OPT_SHELL},
        {"output", required_argument, NULL, 'o'},
        {"chunk-size", required_argument, NULL, OPT_CHUNK},
        {"pipeline-depth", required_argument, NULL, OPT_DEPTH},
        {"stats", required_argument, NULL, OPT_STATS},
        {"headroom", required_argument, NULL, OPT_HEADROOM},
        {"on-node-failure", required_argument, NULL, OPT_FAILURE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int verbosity = STG_NORMAL, c;
    bool help = false, version = false;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:o:vqhV", longopts, NULL)) != -1) {
        char *end;
        long v;
        switch (c) {
        case 'm': o->manifest = optarg; break;
        case OPT_DEST:
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
            free(o->output);
            o->output = stg_path_absolute(optarg);
            if (!o->output)
                bad("--output: the file name is empty");
            break;
        case OPT_STATS:
            free(o->stats);
            o->stats = stg_path_absolute(optarg);
            if (!o->stats)
                bad("--stats: the file name is empty");
            break;
        case OPT_CHUNK:
            if (stg_parse_size(optarg, &o->chunk_size) < 0 || o->chunk_size < STG_CHUNK_MIN ||
                o->chunk_size > STG_CHUNK_MAX)
                bad("--chunk-size '%s': give a size from 4K to 1G", optarg);
            break;
        case OPT_HEADROOM:
            if (stg_parse_size(optarg, &o->headroom) < 0)
                bad("--headroom '%s': give a size such as 256M or 0", optarg);
            break;
        case OPT_TIMEOUT:
            if (stg_parse_duration(optarg, &o->timeout) < 0)
                bad("--timeout '%s': give a duration such as 90s, 5m or 1h", optarg);
            break;
        case OPT_FAILURE:
            if (strcmp(optarg, "abort") == 0)
                o->skip_failed = false;
            else if (strcmp(optarg, "skip") == 0)
                o->skip_failed = true;
            else
                bad("--on-node-failure '%s': use abort or skip", optarg);
            break;
        case OPT_DEPTH:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 64)
                bad("--pipeline-depth '%s': give a number from 1 to 64", optarg);
            else
                o->depth = (int)v;
            break;
        case 'v': verbosity = verbosity < STG_NORMAL ? STG_NORMAL : verbosity + 1; break;
        case 'q': verbosity = STG_QUIET; break;
        case 'h': help = true; break;
        case 'V': version = true; break;
        case ':': bad("option '%s' needs a value (see --help)", argv[optind - 1]); break;
        default: bad("unknown option '%s' (see --help)", argv[optind - 1]); break;
        }
    }
    stg_log_init(NULL, verbosity);
    if (help || version) {
        if (speak && help)
            fputs(usage_text, stdout);
        else if (speak)
            printf("stage-py %s\n", PACKAGE_VERSION);
        return STG_OK;
    }
    if (optind < argc && strcmp(argv[optind], "stage") == 0)
        optind++;
    if (optind < argc)
        bad("unknown command or argument '%s' (see --help)", argv[optind]);
    if (!o->manifest)
        bad("no manifest: give --manifest FILE (see --help)");
    if (usage_error[0]) {
        if (speak)
            stg_log_error("%s", usage_error);
        return STG_EUSAGE;
    }
    return -1;
}

int main(int argc, char **argv)
{
    int provided = 0;
    /* FUNNELED: only the main thread calls MPI; pack and unpack threads never do. */
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fputs("stage-py: MPI_Init_thread failed\n", stderr);
        return STG_EFAIL;
    }
    stg_oom_hook = oom_abort;
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct stg_opts o = {
        .shell = STG_SHELL_SH, .chunk_size = STG_DEFAULT_CHUNK, .depth = STG_DEFAULT_DEPTH,
        .headroom = STG_DEFAULT_HEADROOM, .timeout = -1,
    };
    int rc = parse(argc, argv, &o, rank == 0);
    if (rc < 0 && provided < MPI_THREAD_FUNNELED) {
        if (rank == 0)
            stg_log_error("the MPI library gives no thread support (MPI_THREAD_FUNNELED)");
        rc = STG_EFAIL;
    }
    if (rc < 0) {
        struct stg_node n;
        stg_node_init(&n);
        stg_log_init(n.name, stg_log_verbosity());
        rc = stg_stage_run(&o, &n);
        stg_node_fini(&n);
    } else if (rc != STG_OK && rank == 0 && !o.output) {
        fputs(stg_env_failure(o.shell), stdout);
    }
    free(o.output);
    free(o.stats);
    /* stdout carries the settings: a failed write must not pass unnoticed. */
    if (fclose(stdout) != 0 && rc == STG_OK) {
        stg_log_error("cannot write to stdout");
        rc = STG_EFAIL;
    }
    MPI_Finalize();
    return rc;
}
