/*
 * admin.h — what the command files of cairn-admin share: the loaded
 * configuration and the cluster key, and the signature of a command.
 *
 * Each command group lives in its own file (meta_cmd.c: the metadata
 * replicas) and is listed in the table of main.c.
 */
#ifndef CAIRN_ADMIN_H
#define CAIRN_ADMIN_H

#include "cairn/cfg.h"
#include "cairn/wire.h"

typedef struct {
    cairn_cfg_t cfg;          /* the cluster configuration (--config) */
    cairn_wire_key_t *key;    /* derived from cfg.secret */
    int json;                 /* --json: machine-readable output where a command offers it */
} admin_t;

/* A command group's entry point: argv[0] is the group name ("meta").
 * Returns the exit status: 0 ok, 1 failed, 2 usage. */
typedef int (*admin_cmd_fn)(admin_t *a, int argc, char **argv);

int admin_meta(admin_t *a, int argc, char **argv);

#endif
