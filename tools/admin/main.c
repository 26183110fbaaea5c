/*
 * main.c — cairn-admin: operate a cairn cluster.
 *
 *   cairn-admin [--config FILE] [--json] GROUP COMMAND [ARGS]
 *
 * The configuration (default $CAIRN_CONFIG, else ./cluster.conf) gives the
 * addresses and the cluster secret that authenticates internal requests.
 * Command groups are listed in `groups` below; each documents its commands
 * in its own usage text.
 *
 * Exit status: 0 ok, 1 the operation failed, 2 bad usage or configuration.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cairn/err.h"
#include "cairn/log.h"

static const struct {
    const char *name;
    admin_cmd_fn fn;
    const char *help;
} groups[] = {
    {"rebalance", admin_rebalance, "[--dry-run] [--rate MB/s] [--parallel N] [--restart] | status"},
    {"repair", admin_repair, "[--dry-run] [--rate MB/s] [--parallel N]"},
    {"gc", admin_gc, "[--dry-run] [--min-age SECONDS]"},
    {"meta", admin_meta, "status | add ID ADDR RAFT_ADDR | remove ID | transfer [ID] | bench [-n N] [-c C]"},
    {"status", admin_status, "[--deep]"},
    {"node", admin_node, "list | add ADDR [--zone Z] [--weight W] [--id N] | drain|undrain|out ID | weight ID W"
                         " | remove ID [--force]"},
};

/* Does a group's command line ask for its usage? Then no configuration is needed. */
static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cairn-admin [--config FILE] [--json] GROUP COMMAND [ARGS]\n"
                 "  --config FILE   cluster configuration (default $CAIRN_CONFIG, else ./cluster.conf)\n"
                 "  --json          machine-readable output (where a command offers it)\n"
                 "groups:\n");
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        fprintf(out, "  %-9s %s\n", groups[i].name, groups[i].help);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = getenv("CAIRN_CONFIG");
    static admin_t a; /* the config is large */
    int o;
    /* "+": stop at the first non-option, the group's own options follow it */
    while ((o = getopt_long(argc, argv, "+c:jh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 'j': a.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (config == NULL || config[0] == '\0')
        config = "cluster.conf";
    signal(SIGPIPE, SIG_IGN);
    cairn_log_init("admin", "-", CAIRN_LOG_WARN);
    char err[256];
    int help_only = 0;
    if (cairn_cfg_load(config, &a.cfg, err, sizeof err) != 0) {
        if (!wants_help(argc - optind, argv + optind)) {
            fprintf(stderr, "cairn-admin: %s\n", err);
            return 2;
        }
        memset(&a.cfg, 0, sizeof a.cfg);
        help_only = 1;
    }
    int rc = help_only ? 0 : cairn_wire_key_create(a.cfg.secret, strlen(a.cfg.secret), &a.key);
    if (rc != 0) {
        fprintf(stderr, "cairn-admin: cluster key: %s\n", cairn_strerror(rc));
        return 2;
    }
    int status = -1;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (strcmp(argv[optind], groups[i].name) == 0)
            status = groups[i].fn(&a, argc - optind, argv + optind);
    if (status < 0) {
        fprintf(stderr, "cairn-admin: unknown command group '%s'\n", argv[optind]);
        usage(stderr);
        status = 2;
    }
    cairn_wire_key_destroy(a.key);
    return status;
}
